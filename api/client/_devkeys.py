"""A development keyring: one generated key per default role, kept as files across runs.

`make run` and the chaos stack write it under `<data_dir>/dev/`: `keyring.json` (what
SWOOSH_KEYRING names), `keys/<role>.key` (private keys, mode 0600) and `signers.json` (role name ->
signer id). Never for production: anyone who can read the folder can sign as every role.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client._factory import DEFAULT_ROLES, Signers
from swoosh.workflows.crypto import private_key_from_text, private_key_to_text, signer_id


@dataclass
class DevKeyring:
    path: Path
    keys_dir: Path | None
    generated: bool


def dev_keyring(data_dir: Path) -> DevKeyring:
    """The development keyring under `<data_dir>/dev`, generated on first use."""
    dev = data_dir / "dev"
    path, keys = dev / "keyring.json", dev / "keys"
    if not path.exists():
        keys.mkdir(parents=True, exist_ok=True)
        signers = []
        for name, roles in DEFAULT_ROLES.items():
            key = Ed25519PrivateKey.generate()
            fd = os.open(keys / f"{name}.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(private_key_to_text(key) + "\n")
            signers.append({"id": signer_id(key.public_key()), "roles": list(roles), "name": name})
        path.write_text(
            json.dumps({"signers": [{"id": s["id"], "roles": s["roles"]} for s in signers]}, indent=2) + "\n"
        )
        (dev / "signers.json").write_text(json.dumps({s["name"]: s["id"] for s in signers}, indent=2) + "\n")
    return DevKeyring(path, keys, True)


def load_signers(keys_dir: Path) -> Signers:
    """Every default role's key written by `dev_keyring`, with its roles."""
    keys = {}
    for name in DEFAULT_ROLES:
        keys[name] = private_key_from_text((keys_dir / f"{name}.key").read_text(encoding="utf-8"))
    return Signers(keys, dict(DEFAULT_ROLES))
