"""The stack's generated signers (`dev/keys/<role>.key`) as an `api.factory.Signers`, for callers."""

from __future__ import annotations

from pathlib import Path

from swoosh.api.client._factory import DEFAULT_ROLES, Signers
from swoosh.workflows.crypto import private_key_from_text


def load_signers(keys_dir: Path) -> Signers:
    """Every DEFAULT_ROLES key written by `worker.dev.ensure_dev_keyring`, with its roles."""
    keys = {}
    for name in DEFAULT_ROLES:
        keys[name] = private_key_from_text((keys_dir / f"{name}.key").read_text(encoding="utf-8"))
    return Signers(keys, dict(DEFAULT_ROLES))


__all__ = ["load_signers"]
