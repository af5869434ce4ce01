"""`swoosh keygen`: make an Ed25519 key file (mode 0600) and add its signer to a keyring."""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.worker.keyring_file import KEYRING_ENV, load_keyring
from swoosh.workflows.crypto import private_key_to_text, signer_id
from swoosh.workflows.errors import KeyringError
from swoosh.workflows.keyring import Identity, Keyring


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="private key file to write (mode 0600)")
    parser.add_argument(
        "--keyring",
        type=Path,
        default=os.environ.get(KEYRING_ENV) or None,
        help=f"keyring JSON to add the signer to, created if missing (default ${KEYRING_ENV}; none = key only)",
    )
    parser.add_argument(
        "--roles", default="*", help="comma-separated roles, e.g. operator,council (default *: every role)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing key file")


def write_key(path: Path, key: Ed25519PrivateKey, force: bool = False) -> None:
    """Write the key file readable by its owner only; never leaves a wider-mode file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyringError(f"{path} exists; pass --force to overwrite it") from None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(private_key_to_text(key) + "\n")
    os.chmod(path, 0o600)


def add_to_keyring(path: Path, signer: str, roles: tuple[str, ...]) -> Keyring:
    """Add (or update the roles of) `signer` in the keyring file, creating it if needed; atomic write.

    A keyring that exists keeps its permission bits (the temporary file would otherwise be 0600).
    """
    mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else None
    current = load_keyring(path) if path.exists() else Keyring()
    others = tuple(s for s in current.signers if s.id != signer)
    keyring = Keyring(signers=(*others, Identity(id=signer, roles=roles)))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"signers": [{"id": s.id, "roles": list(s.roles)} for s in keyring.signers]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(data)
    if mode is not None:
        os.chmod(tmp, mode)
    os.replace(tmp, path)
    return keyring


def main(args: argparse.Namespace) -> int:
    roles = tuple(r.strip() for r in str(args.roles).split(",") if r.strip())
    if not roles:
        raise KeyringError("--roles needs at least one role")
    out = Path(args.out)
    if out.exists() and not args.force:
        raise KeyringError(f"{out} exists; pass --force to overwrite it")
    if args.keyring is not None and Path(args.keyring).exists():
        load_keyring(args.keyring)  # a malformed keyring fails before anything is written
    key = Ed25519PrivateKey.generate()
    signer = signer_id(key.public_key())
    write_key(out, key, force=bool(args.force))
    if args.keyring is not None:
        add_to_keyring(Path(args.keyring), signer, roles)
    print(signer)
    if args.keyring is not None:
        print(f"added to {args.keyring} with roles {','.join(roles)}", file=sys.stderr)
    return 0
