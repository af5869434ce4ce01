"""Reading settings files: the TOML config (optionally age-encrypted) and the files behind `_FILE` settings.

`SWOOSH_CONFIG` may name an age-encrypted TOML file (binary or ASCII-armored); it is decrypted in
memory with the identity file named by `SWOOSH_AGE_IDENTITY` (one `AGE-SECRET-KEY-1…` per line, `#`
comments), never written out. Errors name the file and what is wrong, never a secret.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyrage

from swoosh.workflows.errors import ConfigError

AGE_IDENTITY_ENV = "SWOOSH_AGE_IDENTITY"
_AGE_MAGIC = (b"age-encryption.org/v1", b"-----BEGIN AGE ENCRYPTED FILE-----")


def is_age_encrypted(data: bytes) -> bool:
    return data.lstrip().startswith(_AGE_MAGIC)


def read_config(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The TOML settings in `path`, decrypted first when it is an age file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror}") from None
    if is_age_encrypted(data):
        data = _decrypt(path, data, env)
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text (nor an age-encrypted file)") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


def _decrypt(path: Path, data: bytes, env: Mapping[str, str]) -> bytes:
    identity_file = env.get(AGE_IDENTITY_ENV)
    if not identity_file:
        raise ConfigError(f"config file {path} is age-encrypted: set {AGE_IDENTITY_ENV} to the age identity file")
    identities = read_age_identities(Path(identity_file))
    try:
        return pyrage.decrypt(data, identities)
    except pyrage.DecryptError:
        raise ConfigError(
            f"cannot decrypt config file {path} with the identities in {identity_file} "
            "(not encrypted to them, or the file is damaged)"
        ) from None


def read_age_identities(path: Path) -> list[pyrage.x25519.Identity]:
    """The X25519 identities in an age identity file (as `age-keygen` writes it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{AGE_IDENTITY_ENV}: cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    identities = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            identities.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise ConfigError(f"{AGE_IDENTITY_ENV}: line {n} of {path} is not an age identity") from None
    if not identities:
        raise ConfigError(f"{AGE_IDENTITY_ENV}: {path} holds no age identity")
    return identities


def read_secret_file(path: Path, setting: str) -> str:
    """The content of a secret's file (surrounding whitespace removed); ConfigError naming the setting."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{setting}: cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    if not text:
        raise ConfigError(f"{setting}: {path} is empty")
    return text
