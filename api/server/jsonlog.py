"""Structured JSON-line logs for the API (stdlib logging with a JSON formatter).

Only fields named in `SAFE_FIELDS` are ever written from a record's `swoosh` payload, so tokens,
signatures, private keys and Authorization headers cannot reach the log by accident; messages
themselves are built from those fields, never from request bodies or headers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from swoosh.guards.policy import redact
from swoosh.workflows.answers import Accepted, Rejected

LOGGER_NAME = "swoosh.api"
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
    }
)

log = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's whitelisted `swoosh` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "swoosh", None)
        if isinstance(fields, dict):
            out.update({k: redact(v) for k, v in fields.items() if k in SAFE_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(level: int = logging.INFO, stream: Any = None, logger: str = "") -> logging.Handler:
    """Write `logger`'s records (default: the root logger, so uvicorn's too) to `stream` as JSON lines; idempotent."""
    target = logging.getLogger(logger)
    for h in target.handlers:
        if isinstance(h.formatter, JsonFormatter):
            return h
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    target.addHandler(handler)
    target.setLevel(level)
    return handler


def _emit(level: int, msg: str, **fields: Any) -> None:
    log.log(level, msg, extra={"swoosh": fields})


def accepted(answer: Accepted, window_id: str | None) -> None:
    _emit(
        logging.INFO,
        f"{'duplicate' if answer.duplicate else 'accepted'} {answer.transition} at index {answer.index}",
        event="transition_accepted",
        project_id=answer.project_id,
        transition=answer.transition,
        idem_key=answer.idem_key,
        hlc=answer.hlc,
        window_id=window_id,
        state_pre_hash=answer.state_pre_hash,
        state_post_hash=answer.state_post_hash,
        index=answer.index,
        duplicate=answer.duplicate,
    )


def rejected(project_id: str | None, transition: str | None, idem_key: str | None, answer: Rejected) -> None:
    _emit(
        logging.INFO,
        f"rejected {transition or '?'}: {answer.error}",
        event="transition_rejected",
        project_id=project_id,
        transition=transition,
        idem_key=idem_key,
        error=answer.error,
        failing_guard=answer.failing_guard,
        reason=answer.reason,
        head_hash=answer.head_hash,
    )


def problem(
    project_id: str | None, method: str, path: str, status: int, error: str, reason: str, retry_after: int | None
) -> None:
    _emit(
        logging.WARNING if status >= 500 else logging.INFO,
        f"{method} {path} -> {status} {error}",
        event="http_problem",
        project_id=project_id,
        method=method,
        path=path,
        status=status,
        error=error,
        reason=reason,
        retry_after=retry_after,
    )


def event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    _emit(level, msg, event=fields.pop("event", "api"), **fields)
