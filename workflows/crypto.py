"""Ed25519 identities for SWOOSH: `hmmm:pubkey:<base64url>` signer ids, signing and verification."""

from __future__ import annotations

import base64
import functools
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from swoosh.workflows.canonical import canonical_json

SIGNER_PREFIX = "hmmm:pubkey:"
SIGNER_RE = re.compile(r"hmmm:pubkey:[A-Za-z0-9_-]{43}")  # always used with fullmatch
SIGNATURE_RE = re.compile(r"[A-Za-z0-9_-]{86}")


def b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on anything else."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text, flags=re.ASCII):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signer_id(public_key: Ed25519PublicKey) -> str:
    """The signer id of a public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SIGNER_PREFIX + b64url(raw)


@functools.lru_cache(maxsize=4096)
def public_key_of(signer: str) -> Ed25519PublicKey | None:
    """The public key named by a signer id, or None if the id is malformed."""
    if not SIGNER_RE.fullmatch(signer):
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(signer[len(SIGNER_PREFIX) :]))
    except ValueError:
        return None


def sign_bytes(private_key: Ed25519PrivateKey, message: bytes) -> str:
    """An Ed25519 signature as base64url without padding."""
    return b64url(private_key.sign(message))


def verify_bytes(signer: str, message: bytes, signature: str) -> bool:
    """True when `signature` is the signer's valid Ed25519 signature of `message`."""
    key = public_key_of(signer)
    if key is None or not isinstance(signature, str) or not SIGNATURE_RE.fullmatch(signature):
        return False
    try:
        key.verify(b64url_decode(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_object(private_key: Ed25519PrivateKey, value: Any) -> str:
    """Sign the canonical JSON of a JSON-like value."""
    return sign_bytes(private_key, canonical_json(value))


def verify_object(signer: str, value: Any, signature: str) -> bool:
    """Verify a signature over the canonical JSON of a JSON-like value."""
    return verify_bytes(signer, canonical_json(value), signature)


def private_key_to_text(key: Ed25519PrivateKey) -> str:
    """The raw 32-byte seed as base64url (the key file format)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return b64url(raw)


def private_key_from_text(text: str) -> Ed25519PrivateKey:
    """Read a key written by `private_key_to_text`; raise ValueError when malformed."""
    raw = b64url_decode(text.strip())
    if len(raw) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(raw)
