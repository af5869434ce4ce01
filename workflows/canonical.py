"""Canonical JSON and `sha256-…` content hashes, exactly as CONTRACT.md defines them."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

HASH_PREFIX = "sha256-"


def canonical_json(value: Any) -> bytes:
    """Serialise `value` the one way every SWOOSH component hashes and signs it."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_hash(value: Any) -> str:
    """`sha256-` + 64 lowercase hex of SHA-256 over the canonical JSON of `value`."""
    return HASH_PREFIX + hashlib.sha256(canonical_json(value)).hexdigest()


_HASH_RE = re.compile(r"sha256-[0-9a-f]{64}")


def is_hash(text: object) -> bool:
    """True when `text` has the exact shape of a SWOOSH content hash."""
    return isinstance(text, str) and _HASH_RE.fullmatch(text) is not None


def reject_floats(value: Any, path: str = "$") -> None:
    """Raise ValueError if a float hides anywhere in `value` (floats do not hash portably)."""
    if isinstance(value, float):
        raise ValueError(f"floats are not allowed ({path})")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings ({path})")
            reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            reject_floats(item, f"{path}[{i}]")
