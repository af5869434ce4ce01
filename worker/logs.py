"""JSON-line logs for every SWOOSH process: one formatter, configured once by the `swoosh` CLI.

Only fields named in `SAFE_FIELDS` are ever written from a record's `swoosh` payload (the `extra`
the emitters pass), and every such value is redacted with the SHHH rules, so a secret cannot reach
a log by accident. Every text (the message too) is clipped: a field may quote what a caller sent.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from swoosh.guards.policy import redact
from swoosh.workflows.errors import REASON_CHARS, clip_text

# The message is built from fields, so it may hold a few of them.
MESSAGE_CHARS = 2 * REASON_CHARS
TRACEBACK_CHARS = 8192

SAFE_FIELDS = frozenset(
    {
        "event",
        "project_id",
        "transition",
        "idem_key",
        "hlc",
        "window_id",
        "signer",
        "state_pre_hash",
        "state_post_hash",
        "index",
        "duplicate",
        "accepted",
        "error",
        "failing_guard",
        "reason",
        "head_hash",
        "status",
        "method",
        "path",
        "duration_ms",
        "retry_after",
        "attempt",
        # process start lines: where a process connects and its capacity (describe() and settings, no secrets)
        "task_queue",
        "temporal",
        "worker",
        "health",
        "token_label",
        "labels",
    }
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's whitelisted `swoosh` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": clip_text(redact(record.getMessage()), MESSAGE_CHARS),
        }
        fields = getattr(record, "swoosh", None)
        if isinstance(fields, dict):
            out.update({k: _clipped(redact(v)) for k, v in fields.items() if k in SAFE_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            # The traceback, redacted like every other text (an exception message may quote input),
            # and bounded: its last lines (where it was raised) are kept.
            text = redact(self.formatException(record.exc_info))
            out["traceback"] = text if len(text) <= TRACEBACK_CHARS else "…" + text[-TRACEBACK_CHARS:]
        return json.dumps(out, ensure_ascii=False, default=str)


def _clipped(value: Any) -> Any:
    return clip_text(value) if isinstance(value, str) else value


def configure(level: int = logging.INFO, stream: Any = None, logger: str = "") -> logging.Handler:
    """Write `logger`'s records (default: the root logger, uvicorn's too) as JSON lines; idempotent."""
    target = logging.getLogger(logger)
    for h in target.handlers:
        if isinstance(h.formatter, JsonFormatter):
            target.setLevel(level)
            return h
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    target.addHandler(handler)
    target.setLevel(level)
    return handler
