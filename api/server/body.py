"""The rules a request body must meet to be read at all: a JSON object, not too deep, valid Unicode text.

A body that breaks one is a `schema` rejection, whichever path it came through (the gateway's
transitions, the migration router's mutations).
"""

from __future__ import annotations

import json
from typing import Any

from swoosh.workflows.canonical import canonical_json

MAX_DEPTH = 32


def decode_body(raw: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The body as a JSON object, or the schema reason it is not one."""
    if not raw.strip():
        return None, "the body is empty; send a JSON object"
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        return None, "the body is nested too deeply"
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, int digit limits
        return None, f"the body is not valid JSON: {str(err)[:200]}"
    if not isinstance(value, dict):
        return None, "the body must be a JSON object"
    if _depth(value) > MAX_DEPTH:
        return None, f"the body is nested deeper than {MAX_DEPTH} levels"
    try:
        canonical_json(value)
    except (UnicodeEncodeError, ValueError, TypeError):
        return None, "the body has strings that are not valid Unicode text"
    return value, None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level
