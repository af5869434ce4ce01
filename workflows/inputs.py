"""Validate a proposal's `inputs` against the input schema its transition declares in the YAML."""

from __future__ import annotations

from typing import Any

from swoosh.workflows.canonical import canonical_json, is_hash
from swoosh.workflows.crypto import SIGNER_RE, public_key_of
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.statechart import InputField, Role, TransitionSpec

MAX_TEXT = 4096
MAX_ITEMS = 256
REGIONS = ("ingestion", "council", "environment")
# The roles an identity may be given (`*` = every role); `system` is SWOOSH's own.
GRANTABLE_ROLES = frozenset(r for r in Role.__args__ if r != "system") | {"*"}  # type: ignore[attr-defined]
MAX_SIGNATURE = 128


def _text(v: Any) -> bool:
    return isinstance(v, str) and 1 <= len(v) <= MAX_TEXT


def _signed_item(v: Any, who: str, epoch: bool = False) -> str | None:
    if not isinstance(v, dict):
        return "must be an object"
    expected = {who, "members_hash", "window_id", "signature"} | ({"epoch"} if epoch else set())
    if set(v) != expected:
        return f"must have exactly the fields {', '.join(sorted(expected))}"
    if not isinstance(v[who], str) or not SIGNER_RE.fullmatch(v[who]):
        return f"{who} must be a signer id"
    if not is_hash(v["members_hash"]):
        return "members_hash must be a sha256- hash"
    if v["window_id"] is not None and not _text(v["window_id"]):
        return "window_id must be a string or null"
    if not isinstance(v["signature"], str):
        return "signature must be a string"
    if epoch:  # the election epoch's rule set also bounds the signature (older projects keep theirs)
        if len(v["signature"]) > MAX_SIGNATURE:
            return f"signature must be at most {MAX_SIGNATURE} characters"
        if not isinstance(v["epoch"], int) or isinstance(v["epoch"], bool) or v["epoch"] < 0:
            return "epoch must be an integer >= 0 (the election epoch the vote is cast in)"
    return None


def _identity(v: Any) -> str | None:
    if not isinstance(v, dict) or set(v) != {"id", "roles"}:
        return "must be an object with exactly the fields id, roles"
    if not isinstance(v["id"], str) or not SIGNER_RE.fullmatch(v["id"]) or public_key_of(v["id"]) is None:
        return "id must be a signer id hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>"
    roles = v["roles"]
    if (
        not isinstance(roles, list)
        or not 1 <= len(roles) <= len(GRANTABLE_ROLES)
        or len(set(map(str, roles))) != len(roles)
    ):
        return "roles must be a list of distinct roles, at least one"
    unknown = sorted(str(r) for r in roles if r not in GRANTABLE_ROLES)
    if unknown:
        return f"roles {', '.join(unknown)} unknown (roles are {', '.join(sorted(GRANTABLE_ROLES))})"
    return None


def _rotation_approval(v: Any) -> str | None:
    if not isinstance(v, dict) or set(v) != {"approver", "epoch", "signature"}:
        return "must have exactly the fields approver, epoch, signature"
    if not isinstance(v["approver"], str) or not SIGNER_RE.fullmatch(v["approver"]):
        return "approver must be a signer id"
    if not isinstance(v["epoch"], int) or isinstance(v["epoch"], bool) or v["epoch"] < 0:
        return "epoch must be an integer >= 0"
    if not isinstance(v["signature"], str) or len(v["signature"]) > MAX_SIGNATURE:
        return f"signature must be a string of at most {MAX_SIGNATURE} characters"
    return None


def _check(field: InputField, v: Any, election_epoch: bool = False) -> str | None:
    t = field.type
    if t == "text":
        return None if _text(v) else f"must be a string of 1-{MAX_TEXT} characters"
    if t == "hash":
        return None if is_hash(v) else "must be sha256- followed by 64 lowercase hex digits"
    if t == "count":
        if not isinstance(v, int) or isinstance(v, bool):
            return "must be an integer"
        low = field.minimum if field.minimum is not None else 0
        return None if v >= low else f"must be at least {low}"
    if t == "signer":
        return None if isinstance(v, str) and SIGNER_RE.fullmatch(v) else "must be a signer id hmmm:pubkey:…"
    if t == "pins":
        if not isinstance(v, dict) or not v or len(v) > MAX_ITEMS:
            return f"must be an object of 1-{MAX_ITEMS} tool: version pairs"
        if not all(_text(k) and _text(x) for k, x in v.items()):
            return "tool names and versions must be non-empty strings"
        return None
    if t == "region_hashes":
        if not isinstance(v, dict) or set(v) != set(REGIONS):
            return "must be an object with exactly ingestion, council and environment"
        return None if all(is_hash(x) for x in v.values()) else "each region hash must be a sha256- hash"
    # list types
    if not isinstance(v, list) or len(v) > MAX_ITEMS:
        return f"must be a list of at most {MAX_ITEMS} items"
    if field.min_items is not None and len(v) < field.min_items:
        return f"must have at least {field.min_items} item(s)"
    for i, item in enumerate(v):
        if t == "text_list" and not _text(item):
            return f"item {i} must be a non-empty string"
        if t == "signer_list" and not (isinstance(item, str) and SIGNER_RE.fullmatch(item)):
            return f"item {i} must be a signer id"
        if t == "vote_list" and (err := _signed_item(item, "voter", election_epoch)):
            return f"vote {i} {err}"
        if t == "approval_list" and (err := _signed_item(item, "approver")):
            return f"approval {i} {err}"
        if t == "identity_list" and (err := _identity(item)):
            return f"identity {i} {err}"
        if t == "rotation_approval_list" and (err := _rotation_approval(item)):
            return f"approval {i} {err}"
    return None


COPIED_TYPES = ("text_list", "pins")  # the list and object inputs transitions copy into the document


def validate_inputs(
    spec: TransitionSpec, inputs: dict[str, Any], *, election_epoch: bool = False, copied_bytes: int | None = None
) -> None:
    """Raise ProposalError('schema') naming the first input that does not fit the declared schema.

    The project's rules (see `EngineConfig`): `election_epoch`, votes name the election they are cast
    in; `copied_bytes`, the most canonical JSON a list or object input may have (it is copied into
    the state document).
    """
    unknown = sorted(set(inputs) - set(spec.inputs))
    if unknown:
        raise ProposalError("schema", f"{spec.name} takes no input(s) {', '.join(unknown)}")
    for name, field in spec.inputs.items():
        if name not in inputs:
            if field.required:
                raise ProposalError("schema", f"{spec.name} needs input {name} ({field.type})")
            continue
        err = _check(field, inputs[name], election_epoch)
        if err:
            raise ProposalError("schema", f"inputs.{name} {err}")
        if copied_bytes is not None and field.type in COPIED_TYPES:
            size = len(canonical_json(inputs[name]))
            if size > copied_bytes:
                raise ProposalError(
                    "schema",
                    f"inputs.{name} is {size} bytes of JSON; what is copied into the state document "
                    f"is at most {copied_bytes}",
                )
