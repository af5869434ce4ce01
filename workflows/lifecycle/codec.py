"""Payload encryption: an AES-256-GCM `PayloadCodec` with key ids and rotation, and its settings.

With keys configured, every payload a SWOOSH process writes to Temporal (workflow inputs and
snapshots, Update and Signal arguments, answers, activity inputs and results, queries, failure
messages) is encrypted with the *active* key: metadata `encoding: binary/encrypted` and
`encryption-key-id: <id>`, data = 12-byte nonce + ciphertext of the serialized plaintext payload
(the layout of Temporal's encryption samples, so their codec servers interoperate). Decoding accepts
any listed key, so a rotation is: add the new key as active, keep the old one listed until no
history still needs it. Payloads that are not encrypted (histories written before encryption was
turned on) pass through unchanged. Keys never leave this object: not in logs, errors or history.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from swoosh.workflows.errors import SwooshError

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
KEY_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class PayloadKeyError(SwooshError):
    """A payload that cannot be decrypted: its key is not configured, or the data is not what was encrypted."""


def parse_key(entry: str) -> tuple[str, bytes]:
    """`id=<base64 of 32 bytes>` as (id, key); ValueError naming the id (never the key) when malformed."""
    key_id, sep, text = entry.strip().partition("=")
    key_id = key_id.strip()
    if not sep or not KEY_ID_RE.fullmatch(key_id):
        raise ValueError("each key is id=<base64 of 32 bytes>, id 1-64 of [A-Za-z0-9_.-]")
    text = text.strip()
    try:
        padded = text + "=" * (-len(text) % 4)
        raw = base64.b64decode(padded, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key {key_id}: not base64") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"key {key_id}: {len(raw)} bytes, AES-256 needs {KEY_BYTES}")
    return key_id, raw


def new_key_entry(key_id: str) -> str:
    """A fresh random key as a settings entry `id=<base64>` (what `make run` writes for development)."""
    if not KEY_ID_RE.fullmatch(key_id):
        raise ValueError("key id must be 1-64 of [A-Za-z0-9_.-]")
    return f"{key_id}={base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


class EncryptionSettings(BaseModel):
    """Settings section `[encryption]`: the keys (secret), the one new payloads are encrypted with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: tuple[SecretStr, ...] = ()  # id=<base64 32 bytes> entries; none = encryption off
    active_key: str | None = None  # default: the first key listed

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        ids = [parse_key(k.get_secret_value())[0] for k in value]
        if len(ids) != len(set(ids)):
            raise ValueError("a key id is listed twice")
        return value

    @model_validator(mode="after")
    def _active(self) -> Self:
        if self.active_key is not None and self.active_key not in self.key_ids():
            raise ValueError(f"active_key {self.active_key!r} is not among the keys ({', '.join(self.key_ids())})")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def key_ids(self) -> list[str]:
        return [parse_key(k.get_secret_value())[0] for k in self.keys]

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> EncryptionSettings:
        """The `SWOOSH_ENCRYPTION_*` variables alone (for harnesses below the process settings, e.g. chaos)."""
        text = env.get("SWOOSH_ENCRYPTION_KEYS", "")
        path = env.get("SWOOSH_ENCRYPTION_KEYS_FILE")
        if path:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        entries = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
        return cls.model_validate({"keys": entries, "active_key": env.get("SWOOSH_ENCRYPTION_ACTIVE_KEY") or None})

    def codec(self) -> EncryptionCodec | None:
        """The codec for these keys; None when encryption is off."""
        if not self.keys:
            return None
        keys = dict(parse_key(k.get_secret_value()) for k in self.keys)
        return EncryptionCodec(keys, self.active_key or next(iter(keys)))


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over whole payloads: encrypt with the active key, decrypt with any listed one."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        super().__init__()
        if active not in keys:
            raise ValueError(f"active key {active!r} is not among the keys")
        self.active = active
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active_meta = active.encode()

    @property
    def key_ids(self) -> list[str]:
        return list(self._ciphers)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.encrypt(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return self.decrypt(payloads)

    def encrypt(self, payloads: Iterable[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.active]
        out = []
        for p in payloads:
            nonce = os.urandom(NONCE_BYTES)
            out.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: self._active_meta},
                    data=nonce + cipher.encrypt(nonce, p.SerializeToString(), None),
                )
            )
        return out

    def decrypt(self, payloads: Iterable[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)  # written before encryption was on (or never encrypted): as it is
                continue
            key_id = p.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", "replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise PayloadKeyError(
                    f"payload encrypted with key id {key_id!r}, which is not configured (keys: "
                    f"{', '.join(self._ciphers)}); add it to SWOOSH_ENCRYPTION_KEYS to read this history"
                )
            try:
                plain = cipher.decrypt(p.data[:NONCE_BYTES], p.data[NONCE_BYTES:], None)
            except InvalidTag:
                raise PayloadKeyError(
                    f"payload with key id {key_id!r} does not decrypt: a different key under that id, or damaged data"
                ) from None
            out.append(Payload.FromString(plain))
        return out
