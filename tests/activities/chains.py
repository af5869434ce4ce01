"""Decision-record chains for store tests: hashed and linked like the engine's, with a tag to fork them."""

from __future__ import annotations

from typing import Any

from swoosh.workflows.canonical import content_hash


def chain(n: int, tag: str = "a", *, start: int = 1, prev: str | None = None) -> list[dict[str, Any]]:
    """Records start..start+n-1 linked from `prev`; a different `tag` gives a different (forked) chain."""
    out: list[dict[str, Any]] = []
    for index in range(start, start + n):
        body = {"index": index, "transition": "Control_Pause", "prev_dr_hash": prev, "tag": tag}
        rec = {**body, "dr_hash": content_hash(body)}
        out.append(rec)
        prev = rec["dr_hash"]
    return out


def forked(base: list[dict[str, Any]], at: int, tag: str = "b") -> list[dict[str, Any]]:
    """`base` up to index at-1, then a different chain from index `at` on (same length)."""
    keep = [r for r in base if r["index"] < at]
    prev = keep[-1]["dr_hash"] if keep else None
    return keep + chain(len(base) - len(keep), tag, start=at, prev=prev)
