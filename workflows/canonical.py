"""Canonical JSON and `sha256-…` content hashes, exactly as docs/contract.md defines them."""

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
    return hash_of(canonical_json(value))


def hash_of(raw: bytes) -> str:
    """The content hash of canonical JSON already serialized (when its size is wanted too)."""
    return HASH_PREFIX + hashlib.sha256(raw).hexdigest()


_HASH_RE = re.compile(r"sha256-[0-9a-f]{64}")


def is_hash(text: object) -> bool:
    """True when `text` has the exact shape of a SWOOSH content hash."""
    return (type(text) is str or isinstance(text, str)) and _HASH_RE.fullmatch(text) is not None


def reject_floats(value: Any, path: str = "$") -> None:
    """Raise ValueError if a float hides anywhere in `value` (floats do not hash portably)."""
    if not _plain(value):
        _reject_floats(value, path)


# Exact types of JSON scalars that need no look inside. Exact `type(...)` checks, not isinstance: this
# runs inside Temporal's workflow sandbox, where builtins.isinstance is wrapped and costs far more.
_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """True when `value` holds no float and only string keys (no allocation on this common path)."""
    stack = [value]
    while stack:
        v = stack.pop()
        t = type(v)
        if t in _SCALARS:
            continue
        if t is dict or (t is not list and isinstance(v, dict)):
            for key, item in v.items():
                if type(key) is not str and not isinstance(key, str):
                    return False
                if type(item) not in _SCALARS:
                    stack.append(item)
        elif t is list or isinstance(v, list):
            stack.extend(item for item in v if type(item) not in _SCALARS)
        elif isinstance(v, float):
            return False
    return True


def _reject_floats(value: Any, path: str) -> None:
    """The slow walk that names where the float (or non-string key) is."""
    if isinstance(value, float):
        raise ValueError(f"floats are not allowed ({path})")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"object keys must be strings ({path})")
            _reject_floats(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _reject_floats(item, f"{path}[{i}]")
