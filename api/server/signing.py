"""The signing gateway: unchanged legacy callers' bodies completed and signed as a gateway identity.

A bearer token may be bound to a gateway identity (a signer of the keyring whose private key this
API holds, from `SWOOSH_API_GATEWAY_KEYS` / `SWOOSH_API_GATEWAY_KEYS_FILE`). A legacy body,
`{"transition", "inputs"?, "evidence"?}` with the idempotency headers and no signature, sent with such
a token is completed — the project's head as `current_state_hash`, `inputs_hash`, the header fields,
an HLC stamped here when the caller sent none — and signed with that identity's key. The workflow then
decides it like any proposal, within that identity's roles, and its decision record names the
identity (`signer`) and the token's label (`justification`).

Optimistic concurrency: the head is read (or remembered from the project's last answer) before the
Update, and may move before the Update is validated. A `stale_state_hash` answer carries the new head:
the body is completed again with it and resent, at most `attempts` times, one gateway proposal per
project at a time in this process. The key never leaves this process: completing inside the workflow
would put it (or an unsigned head) into Temporal history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from swoosh.api.client._clock import HLCClock
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import reject_floats
from swoosh.workflows.crypto import private_key_from_text, signer_id
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.messages import HeadView
from swoosh.workflows.proposal import HEADER_FIELDS, ProposalRequest, build_body

# What a legacy body may hold: the contract's three fields, the project, and the header fields in the body.
LEGACY_FIELDS = frozenset({"transition", "inputs", "evidence", "project_id", *HEADER_FIELDS.values()})
ATTEMPTS = 5
HEAD_CACHE = 10_000


class GatewayKeyError(ValueError):
    """A gateway key that cannot be used; says which entry, never the key."""


class GatewayKeys:
    """The private keys of the gateway identities this API signs as, by signer id. Never logged."""

    def __init__(self, keys: Iterable[Ed25519PrivateKey] = ()) -> None:
        self._keys = {signer_id(k.public_key()): k for k in keys}

    @classmethod
    def load(cls, secrets: Iterable[SecretStr | str] = (), key_file: Path | None = None) -> GatewayKeys:
        """Keys as base64url seeds (`swoosh keygen` key files), given inline and/or one per line in a file."""
        texts = [s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets]
        if key_file is not None:
            try:
                texts += key_file.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise GatewayKeyError(f"cannot read gateway key file {key_file}: {err.strerror}") from None
        keys = []
        for n, text in enumerate(t.strip() for t in texts):
            if not text or text.startswith("#"):
                continue
            try:
                keys.append(private_key_from_text(text))
            except ValueError:
                raise GatewayKeyError(f"gateway key {n + 1} is not a base64url Ed25519 seed") from None
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self._keys)

    @property
    def signers(self) -> list[str]:
        return sorted(self._keys)

    def key(self, signer: str) -> Ed25519PrivateKey | None:
        return self._keys.get(signer)


@dataclass(frozen=True)
class Delegation:
    """A request's right to sign as a gateway identity: the identity, its key, the token's label."""

    signer: str
    key: Ed25519PrivateKey
    token_label: str


def is_legacy_body(body: dict[str, Any]) -> bool:
    """True for a body without SWOOSH's fields: no signature, nothing beyond the legacy fields."""
    return "signature" not in body and set(body) <= LEGACY_FIELDS


@dataclass(frozen=True)
class LegacyProposal:
    """A legacy body's content, checked: what the gateway completes and signs."""

    project_id: str
    transition: str
    inputs: dict[str, Any]
    evidence: list[str] | None
    idem_key: str
    hlc: str | None
    window_id: str | None

    @classmethod
    def read(cls, body: dict[str, Any], header_fields: dict[str, str], project_id: str) -> LegacyProposal:
        """ProposalError('schema') when a field is missing, mistyped, or given twice with different values."""
        try:
            reject_floats(body)
        except ValueError as err:
            raise ProposalError("schema", str(err)) from None
        merged = dict(body)
        for name, value in header_fields.items():
            if name in merged and merged[name] != value:
                raise ProposalError("schema", f"{name} given in body and header with different values")
            merged[name] = value
        transition, inputs, evidence = merged.get("transition"), merged.get("inputs", {}), merged.get("evidence")
        if not isinstance(transition, str) or not transition:
            raise ProposalError("schema", "transition: field required (a transition name such as Boot_ConfigOk)")
        if not isinstance(inputs, dict):
            raise ProposalError("schema", "inputs must be a JSON object")
        if evidence is not None and (not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence)):
            raise ProposalError("schema", "evidence must be a list of strings")
        idem = merged.get("idem_key")
        if not isinstance(idem, str) or not idem:
            raise ProposalError("schema", "the Idempotency-Key header is required (the proposal's idem_key)")
        hlc, window = merged.get("hlc"), merged.get("window_id")
        if hlc is not None and not isinstance(hlc, str):
            raise ProposalError("schema", "hlc must be a string")
        if window is not None and not isinstance(window, str):
            raise ProposalError("schema", "window_id must be a string")
        return cls(project_id, transition, inputs, evidence, idem, hlc, window)

    def sign(self, delegation: Delegation, head_hash: str, hlc: str) -> ProposalRequest:
        body = build_body(
            delegation.key,
            transition=self.transition,
            current_state_hash=head_hash,
            idem_key=self.idem_key,
            hlc=self.hlc or hlc,
            inputs=self.inputs,
            project_id=self.project_id,
            window_id=self.window_id,
            evidence=self.evidence,
        )
        return ProposalRequest(body=body, project_id=self.project_id, gateway_token=delegation.token_label)


Send = Callable[[ProposalRequest], Awaitable[Accepted | Rejected]]
ReadHead = Callable[[], Awaitable[HeadView]]


class SigningGateway:
    """Completes, signs and sends legacy proposals; remembers each project's head from its answers."""

    def __init__(self, keys: GatewayKeys, attempts: int = ATTEMPTS) -> None:
        self.keys = keys
        self.attempts = attempts
        self.clock = HLCClock()
        self._heads: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def delegation(self, signer: str | None, token_label: str) -> Delegation | None:
        """The delegation a token bound to `signer` grants (None: not bound, or the key is not held)."""
        if signer is None:
            return None
        key = self.keys.key(signer)
        return Delegation(signer, key, token_label) if key is not None else None

    def remember(self, project_id: str, head_hash: str, hlc_last: str | None) -> None:
        self._heads[project_id] = (head_hash, hlc_last)
        self._heads.move_to_end(project_id)
        while len(self._heads) > HEAD_CACHE:
            self._heads.popitem(last=False)

    def stamp(self, hlc_last: str | None) -> str:
        """An HLC after `hlc_last` (the project's last applied) and after every one stamped here before."""
        if hlc_last:
            self.clock.observe(HLC.parse(hlc_last))
        return self.clock.now().format()

    @contextlib.asynccontextmanager
    async def _project_lock(self, project_id: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(project_id, (asyncio.Lock(), 0))
        self._locks[project_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[project_id]
            if users <= 1:
                del self._locks[project_id]
            else:
                self._locks[project_id] = (lock, users - 1)

    async def propose(
        self, legacy: LegacyProposal, delegation: Delegation, send: Send, read_head: ReadHead
    ) -> Accepted | Rejected:
        """Complete, sign and send; re-complete on `stale_state_hash` (and `hlc_regression` of a stamped HLC).

        The last answer is returned when the head kept moving for every attempt.
        """
        async with self._project_lock(legacy.project_id):
            cached = self._heads.get(legacy.project_id)
            if cached is None:
                head = await read_head()
                cached = (head.hash, head.hlc_last)
            head_hash, hlc_last = cached
            answer: Accepted | Rejected | None = None
            for _ in range(self.attempts):
                request = legacy.sign(delegation, head_hash, self.stamp(hlc_last))
                answer = await send(request)
                if isinstance(answer, Accepted):
                    if not answer.duplicate:
                        self.remember(legacy.project_id, answer.state_hash, answer.hlc)
                    return answer
                if answer.error == "stale_state_hash":
                    head_hash = answer.head_hash
                    self._heads.pop(legacy.project_id, None)
                elif answer.error == "hlc_regression" and legacy.hlc is None:
                    head = await read_head()
                    head_hash, hlc_last = head.hash, head.hlc_last
                else:
                    return answer
            assert answer is not None
            return answer
