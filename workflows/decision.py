"""BUBBLE decision records: one per accepted transition, hash-chained, with a UCXL backlink."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.statechart import SYSTEM_SIGNER

# How a record's UCXL backlink is written. `legacy`: the first format, whose temporal segment is the
# HLC (`2025-…Z~0`), which CHORUS's UCXL parser refuses; kept for projects started with it, because
# `dr_hash` covers the backlink and replay, fold and audit recompute every record. `chorus`: CHORUS's
# grammar, temporal segment `*~<index>` (the record's version in the project's decision log).
UcxlFormat = Literal["legacy", "chorus"]
# CHORUS's component rule (agent, role, project, task); `any` is its wildcard.
UCXL_COMPONENT_RE = re.compile(r"[A-Za-z0-9_-]+")
UCXL_WILDCARD = "any"

RECORD_FIELDS = (
    "project_id",
    "index",
    "transition",
    "signer",
    "idem_key",
    "hlc",
    "window_id",
    "state_pre_hash",
    "state_post_hash",
    "inputs_hash",
    "evidence",
    "guards",
    "justification",
    "ucxl",
    "system_inputs",
    "prev_dr_hash",
    "dr_hash",
)


def ucxl_backlink(
    project_id: str, signer: str, role: str, transition: str, hlc: str, index: int, fmt: UcxlFormat = "legacy"
) -> str:
    """`ucxl://agent:role@project:task/temporal_segment/path` for this record, in the project's format."""
    agent = "swoosh" if signer == SYSTEM_SIGNER else signer.rsplit(":", 1)[-1][:16]
    if fmt == "legacy":
        segment = hlc.replace("+00:00", "Z").replace("#", "~")
        return f"ucxl://{agent}:{role}@{project_id}:{transition}/{segment}/decisions/{index}"
    return f"ucxl://{agent}:{role}@{ucxl_project(project_id)}:{transition}/*~{index}/decisions/{index}"


def ucxl_project(project_id: str) -> str:
    """The project as a UCXL component: unchanged when it is one, else readable and still unique.

    A project id may hold `.`, which CHORUS's component rule does not allow, and `any` is its
    wildcard: such ids become `-` for `.` plus `-` and 8 hex digits of the id's SHA-256.
    """
    if UCXL_COMPONENT_RE.fullmatch(project_id) and project_id != UCXL_WILDCARD:
        return project_id
    digest = hashlib.sha256(project_id.encode("utf-8")).hexdigest()[:8]
    return f"{project_id.replace('.', '-')}-{digest}"


def seal(record: dict[str, Any]) -> dict[str, Any]:
    """Add `dr_hash`: the hash of the record without `dr_hash`."""
    body = {k: v for k, v in record.items() if k != "dr_hash"}
    return {**body, "dr_hash": content_hash(body)}


def verify_chain(records: list[dict[str, Any]], prev_dr_hash: str | None = None) -> str | None:
    """None if the records form an intact chain after `prev_dr_hash`; else the first break, precisely."""
    prev = prev_dr_hash
    for pos, record in enumerate(records):
        missing = [f for f in RECORD_FIELDS if f not in record]
        if missing:
            return f"record {pos} (index {record.get('index')}): missing field(s) {', '.join(missing)}"
        body = {k: v for k, v in record.items() if k != "dr_hash"}
        if content_hash(body) != record["dr_hash"]:
            return f"record {pos} (index {record['index']}): dr_hash does not match its content"
        if pos > 0 or prev is not None:
            if record["prev_dr_hash"] != prev:
                return f"record {pos} (index {record['index']}): prev_dr_hash does not link to the record before"
        if pos > 0 and record["index"] != records[pos - 1]["index"] + 1:
            return f"record {pos}: index {record['index']} does not follow {records[pos - 1]['index']}"
        prev = record["dr_hash"]
    return None
