"""The proposal envelope of docs/contract.md: parsing, canonical signing bytes, signing and verification.

The signature covers the canonical JSON of the body *as sent*, without `signature`; fields filled
from legacy headers (`Idempotency-Key`, `X-HLC`, `X-Window-Id`) are therefore not signed, exactly as
the contract says. `ProposalRequest` keeps the body as sent so any party can re-verify it.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swoosh.workflows.canonical import canonical_json, content_hash, is_hash, reject_floats
from swoosh.workflows.crypto import SIGNER_RE, sign_bytes, signer_id, verify_bytes
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC, HLCFormatError
from swoosh.workflows.ids import PROJECT_ID_RE, PROJECT_ID_RULE

IDEM_KEY_RE = re.compile(r"[\x21-\x7e]{1,256}")
WINDOW_ID_RE = re.compile(r"[\x21-\x7e]{1,128}")
HEADER_FIELDS = {"Idempotency-Key": "idem_key", "X-HLC": "hlc", "X-Window-Id": "window_id"}
ENVELOPE_FIELDS = (
    "project_id",
    "current_state_hash",
    "transition",
    "inputs",
    "inputs_hash",
    "signer",
    "idem_key",
    "hlc",
    "window_id",
    "evidence",
    "signature",
)
MAX_EVIDENCE = 64
# A valid HLC is at most 48 characters and a valid signature 86: the bounds leave room for a
# malformed value to be named in the reason, never for megabytes of it.
MAX_HLC_CHARS = 64
MAX_SIGNATURE_CHARS = 128
SYSTEM_IDEM_PREFIX = "system:"


class Proposal(BaseModel):
    """A parsed, well-formed proposal (not yet authorised or applied)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str | None = None
    current_state_hash: str
    transition: str = Field(min_length=1, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict)
    inputs_hash: str
    signer: str
    idem_key: str
    hlc: str = Field(max_length=MAX_HLC_CHARS)
    window_id: str | None = None
    evidence: list[str] = Field(default_factory=list, max_length=MAX_EVIDENCE)
    signature: str = Field(max_length=MAX_SIGNATURE_CHARS)

    @field_validator("project_id")
    @classmethod
    def _project(cls, v: str | None) -> str | None:
        if v is not None and not PROJECT_ID_RE.fullmatch(v):
            raise ValueError(PROJECT_ID_RULE)
        return v

    @field_validator("current_state_hash", "inputs_hash")
    @classmethod
    def _hash(cls, v: str) -> str:
        if not is_hash(v):
            raise ValueError("must be sha256- followed by 64 lowercase hex digits")
        return v

    @field_validator("signer")
    @classmethod
    def _signer(cls, v: str) -> str:
        if not SIGNER_RE.fullmatch(v):
            raise ValueError("signer must be hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>")
        return v

    @field_validator("idem_key")
    @classmethod
    def _idem(cls, v: str) -> str:
        if not IDEM_KEY_RE.fullmatch(v):
            raise ValueError("idem_key must be 1-256 printable ASCII characters without spaces")
        if v.startswith(SYSTEM_IDEM_PREFIX):
            raise ValueError(
                f"idem_key must not start with {SYSTEM_IDEM_PREFIX!r} (reserved for SWOOSH's own transitions)"
            )
        return v

    @field_validator("window_id")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None and not WINDOW_ID_RE.fullmatch(v):
            raise ValueError("window_id must be 1-128 printable ASCII characters without spaces")
        return v

    @field_validator("hlc")
    @classmethod
    def _hlc(cls, v: str) -> str:
        HLC.parse(v)
        return v

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, v: list[str]) -> list[str]:
        for item in v:
            if not (1 <= len(item) <= 512):
                raise ValueError("each evidence reference is 1-512 characters")
        return v

    @property
    def parsed_hlc(self) -> HLC:
        return HLC.parse(self.hlc)


class ProposalRequest(BaseModel):
    """A proposal as it arrived: the body as sent plus fields taken from legacy headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body: dict[str, Any]
    header_fields: dict[str, str] = Field(default_factory=dict)
    project_id: str | None = None  # from the path or X-Project-Id when the body has none
    # Set by the API when its signing gateway completed and signed a legacy body: the label of the
    # API token bound to the signing identity. The decision record's justification names it.
    gateway_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:@-]{1,64}$")


def signing_bytes(body: dict[str, Any]) -> bytes:
    """Canonical bytes a signer signs: the body as sent, without `signature`."""
    return canonical_json({k: v for k, v in body.items() if k != "signature"})


def _schema(reason: str) -> ProposalError:
    return ProposalError("schema", reason)


def parse_proposal(request: ProposalRequest) -> Proposal:
    """Merge headers into the body, check the envelope's schema; raise ProposalError('schema')."""
    body = request.body
    if not isinstance(body, dict):
        raise _schema("the body must be a JSON object")
    unknown = sorted(set(body) - set(ENVELOPE_FIELDS))
    if unknown:
        raise _schema(f"unknown field(s): {', '.join(unknown)}")
    try:
        reject_floats(body)
    except ValueError as err:
        raise _schema(str(err)) from None
    merged = dict(body)
    for field, value in request.header_fields.items():
        if field not in HEADER_FIELDS.values():
            raise _schema(f"unknown header field {field}")
        if field in merged and merged[field] != value:
            raise _schema(f"{field} given in body and header with different values")
        merged[field] = value
    if merged.get("project_id") is None and request.project_id is not None:
        merged["project_id"] = request.project_id
    elif request.project_id is not None and merged.get("project_id") != request.project_id:
        raise _schema("project_id in the body differs from the project addressed")
    try:
        proposal = Proposal.model_validate(merged)
    except ValidationError as err:
        raise _schema(_first_error(err)) from None
    except HLCFormatError as err:
        raise _schema(str(err)) from None
    return proposal


def _first_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:3]:
        loc = ".".join(str(x) for x in e["loc"]) or "body"
        msg = e["msg"]
        if e["type"] == "missing":
            msg = "field required"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def verify_signature(request: ProposalRequest, proposal: Proposal) -> bool:
    """True when the body as sent is validly signed by the proposal's signer."""
    return SIGNATURES.verify(proposal.signer, signing_bytes(request.body), proposal.signature)


class SignatureMemo:
    """Signature checks already made, remembered by a SHA-256 digest of what was checked.

    The Update validator and then its handler verify the same body, so the second check is free.
    The memo is shared by every workflow of a worker and fed by anyone who can reach the API, so it
    keeps digests, never bodies (a body may be 1 MiB), and at most `max_bytes` of them.
    """

    # What one entry may cost: a 32-byte digest as a bytes object and its slot in the ordered dict
    # (about 140 bytes measured with tracemalloc on CPython 3.11; tests/unit/test_signature_memo.py).
    ENTRY_BYTES = 200

    def __init__(self, max_bytes: int = 1 << 20) -> None:
        self.max_entries = max(1, max_bytes // self.ENTRY_BYTES)
        self._seen: OrderedDict[bytes, bool] = OrderedDict()
        self._lock = threading.Lock()  # workflow tasks of one worker run in several threads

    def __len__(self) -> int:
        return len(self._seen)

    @staticmethod
    def digest(signer: str, message: bytes, signature: str) -> bytes:
        h = hashlib.sha256()
        for part in (signer.encode(), signature.encode()):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
        h.update(message)
        return h.digest()

    def verify(self, signer: str, message: bytes, signature: str) -> bool:
        key = self.digest(signer, message, signature)
        with self._lock:
            known = self._seen.get(key)
            if known is not None:
                self._seen.move_to_end(key)
                return known
        ok = verify_bytes(signer, message, signature)  # pure: racing threads compute the same answer
        with self._lock:
            self._seen[key] = ok
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
        return ok

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


SIGNATURES = SignatureMemo()


def inputs_hash_matches(proposal: Proposal) -> bool:
    return content_hash(proposal.inputs) == proposal.inputs_hash


def build_body(
    private_key: Ed25519PrivateKey,
    *,
    transition: str,
    current_state_hash: str,
    idem_key: str,
    hlc: str,
    inputs: dict[str, Any] | None = None,
    project_id: str | None = None,
    window_id: str | None = None,
    evidence: list[str] | None = None,
) -> dict[str, Any]:
    """Build and sign a complete proposal body (the client's and tests' way to make one)."""
    inputs = {} if inputs is None else inputs
    body: dict[str, Any] = {
        "current_state_hash": current_state_hash,
        "transition": transition,
        "inputs": inputs,
        "inputs_hash": content_hash(inputs),
        "signer": signer_id(private_key.public_key()),
        "idem_key": idem_key,
        "hlc": hlc,
    }
    if project_id is not None:
        body["project_id"] = project_id
    if window_id is not None:
        body["window_id"] = window_id
    if evidence is not None:
        body["evidence"] = evidence
    body["signature"] = sign_bytes(private_key, signing_bytes(body))
    return body
