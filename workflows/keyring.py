"""Keyrings: the JSON file named by SWOOSH_KEYRING listing authorised signers and their roles."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from swoosh.workflows.crypto import SIGNER_RE, public_key_of


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
