"""The receipt key: SWOOSH's own Ed25519 key that signs snapshot receipts, only ever held by workers.

The delivery activity signs each receipt the workflow hands it (`workflows/receipts.py`) before
storing it with the records, so the private key is never in workflow code or Temporal history; the
signed receipt (public signer id and signature) comes back as the activity's result. A worker
without a key stores receipts unsigned and says so at start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, SecretStr, model_validator

from swoosh.workflows.crypto import private_key_from_text, private_key_to_text, signer_id
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.receipts import sign_receipt

log = logging.getLogger("swoosh.activities.receipts")


class ReceiptSettings(BaseModel):
    """The receipt signing key: the key text (`swoosh keygen` format) or a file holding it. A secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: SecretStr | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if self.key is not None and self.key_file is not None:
            raise ValueError("give key or key_file, not both")
        return self

    def signing_key(self) -> Ed25519PrivateKey | None:
        """The private key, or None when none is configured; ConfigError when unreadable (never echoes it)."""
        if self.key is not None:
            text, where = self.key.get_secret_value(), "receipts.key"
        elif self.key_file is not None:
            where = f"receipts.key_file {self.key_file}"
            try:
                text = self.key_file.read_text(encoding="utf-8")
            except OSError as err:
                raise ConfigError(f"{where}: {err.strerror}") from None
        else:
            return None
        try:
            return private_key_from_text(text)
        except ValueError:
            raise ConfigError(f"{where}: not an Ed25519 key in the `swoosh keygen` format") from None


class ReceiptSigner:
    """Signs receipts with the worker's key; without one, leaves them unsigned."""

    def __init__(self, key: Ed25519PrivateKey | None) -> None:
        self._key = key
        self.signer = signer_id(key.public_key()) if key is not None else None

    def sign(self, receipts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self._key is None:
            return [dict(r) for r in receipts]
        return [sign_receipt(self._key, r) for r in receipts]


def receipt_signer(settings: ReceiptSettings) -> ReceiptSigner:
    key = settings.signing_key()
    signer = ReceiptSigner(key)
    if key is None:
        log.warning("no receipt key configured (SWOOSH_RECEIPTS_KEY_FILE): snapshot receipts are stored unsigned")
    return signer


def write_dev_receipt_key(directory: Path) -> tuple[Path, str]:
    """`<directory>/receipt.key` (mode 0600) and `receipt.pub`, made once: what `make run` signs receipts with."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, pub_path = directory / "receipt.key", directory / "receipt.pub"
    if key_path.exists():
        key = private_key_from_text(key_path.read_text(encoding="utf-8"))
    else:
        key = Ed25519PrivateKey.generate()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(private_key_to_text(key) + "\n")
    public = signer_id(key.public_key())
    pub_path.write_text(public + "\n", encoding="utf-8")
    return key_path, public
