"""Keyrings: the JSON file named by SWOOSH_KEYRING listing authorised signers and their roles."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflows.crypto import SIGNER_RE, public_key_of
from workflows.errors import KeyringError

KEYRING_ENV = "SWOOSH_KEYRING"


class Identity(BaseModel):
    """One authorised signer: its id and the roles it may act in (`*` = every role)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    roles: tuple[str, ...] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _valid_signer(cls, value: str) -> str:
        if not SIGNER_RE.fullmatch(value) or public_key_of(value) is None:
            raise ValueError("signer id must be hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>")
        return value

    def has_role(self, role: str) -> bool:
        return "*" in self.roles or role in self.roles


class Keyring(BaseModel):
    """The keyring file's content: `{"signers": [{"id": …, "roles": […]}]}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signers: tuple[Identity, ...] = ()

    @field_validator("signers")
    @classmethod
    def _unique(cls, signers: tuple[Identity, ...]) -> tuple[Identity, ...]:
        ids = [s.id for s in signers]
        if len(ids) != len(set(ids)):
            raise ValueError("a signer is listed twice")
        return signers

    def identities(self) -> list[dict[str, object]]:
        """The identities as they are stored in `boot.identities` (sorted, canonical)."""
        return [{"id": s.id, "roles": sorted(set(s.roles))} for s in sorted(self.signers, key=lambda s: s.id)]


def load_keyring(path: str | Path | None = None) -> Keyring:
    """Load a keyring from `path`, else from $SWOOSH_KEYRING; raise KeyringError with the reason."""
    source = path if path is not None else os.environ.get(KEYRING_ENV)
    if not source:
        raise KeyringError(f"no keyring: set {KEYRING_ENV} to a keyring JSON file")
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as err:
        raise KeyringError(f"cannot read keyring {source}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise KeyringError(f"keyring {source} is not JSON: {err}") from None
    try:
        return Keyring.model_validate(data)
    except ValidationError as err:
        raise KeyringError(f"keyring {source} is malformed: {err}") from None
