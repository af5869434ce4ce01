#!/usr/bin/env python3
"""Development secrets for the compose stack, written to deploy/compose/secrets/ (never commit them).

Run with SWOOSH installed (the repository's `.venv/bin/python deploy/compose/dev-secrets.py`, or in
the image: `docker compose run --rm --entrypoint python -v "$PWD/secrets:/out" worker
/dev/stdin /out < dev-secrets.py`). Idempotent: what exists is kept. Writes the signer keyring
(one key per role under keys/), a development licence for the embedded KACHING provider, the
database passwords, the decision-record store's DSN, the API token (`api_token`, and `api_tokens`
for the API's SWOOSH_API_TOKENS_FILE) and the payload encryption key (`encryption_keys`, for
SWOOSH_ENCRYPTION_KEYS_FILE: every SWOOSH process of the stack and its codec server read the same file).

Permissions: Compose bind-mounts a file secret with its owner and mode on the host (the `uid`, `gid`
and `mode` of a secret are not applied to file secrets), and the containers run as other users
(SWOOSH as uid 10001, Temporal's image as its own). So the folder is made 0700 (no other user of the
host can reach the files) and the files the containers read are made 0644 inside it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

from swoosh.activities.kaching import create_dev_license
from swoosh.api.client import dev_keyring
from swoosh.workflows.lifecycle.codec import new_key_entry


def _secret(path: Path, make: str) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(make)
    return path.read_text(encoding="utf-8").strip()


# The files the compose file mounts as secrets (its top-level `secrets:`), read by non-root containers.
MOUNTED = (
    "keyring.json",
    "license.json",
    "license.pub",
    "postgres_dsn",
    "api_tokens",
    "encryption_keys",
    "temporal_db_password",
    "swoosh_db_password",
)


def main(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(0o700)  # the only guard on the host: the mounted files below must be readable in the containers
    keyring = dev_keyring(out)  # out/dev/keyring.json, out/dev/keys/<role>.key
    shutil.copyfile(keyring.path, out / "keyring.json")
    create_dev_license(out)  # out/license.json, license.pub, license-key
    _secret(out / "temporal_db_password", secrets.token_urlsafe(24))
    swoosh_password = _secret(out / "swoosh_db_password", secrets.token_urlsafe(24))
    _secret(out / "postgres_dsn", f"postgresql://swoosh:{swoosh_password}@postgresql:5432/swoosh")
    token = _secret(out / "api_token", "swoosh-" + secrets.token_urlsafe(24))
    _secret(out / "api_tokens", token + "\n")  # SWOOSH_API_TOKENS_FILE: one token per line
    # SWOOSH_ENCRYPTION_KEYS_FILE: one `id=<base64>` key per line; a rotation adds a line (docs/operations.md).
    _secret(out / "encryption_keys", new_key_entry(time.strftime("compose-%Y%m%d", time.gmtime())) + "\n")
    for name in MOUNTED:
        (out / name).chmod(0o644)
    print(
        json.dumps(
            {
                "written": str(out),
                "keys": str(out / "dev" / "keys"),
                "api_token_file": str(out / "api_token"),
                "encryption_keys_file": str(out / "encryption_keys"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "secrets"))
