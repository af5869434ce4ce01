"""JSON-line logs for every SWOOSH process: one formatter, configured once by the `swoosh` CLI.

Only fields named in `SAFE_FIELDS` are ever written from a record's `swoosh` payload (the `extra`
the emitters pass), and every such value is redacted with the SHHH rules, so a secret cannot reach
a log by accident. Every text (the message too) is clipped: a field may quote what a caller sent.
A record with an exception carries its traceback, redacted the same way and with every configured
secret (`add_secrets`) blanked. Records of workflow code (`workflow.logger`)
carry the workflow and run id; any record written inside a traced span carries its trace id.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

from swoosh.guards.policy import REDACTED, redact
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
        "trace_id",
        # migration from WHOOSH: the mode in force and its changes, catch-up sweeps (no bodies, no secrets)
        "mode",
        "version",
        "projects",
        "applied",
        "pending",
    }
)
_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def add_secrets(values: Iterable[str]) -> None:
    """Secrets this process knows (tokens, keys): blanked wherever they would appear in a log line."""
    with _secrets_lock:
        _secrets.update(v for v in values if len(v) >= 4)


def secret_values(model: BaseModel) -> list[str]:
    """Every `SecretStr` value in a settings model, however deep."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            out.append(value.get_secret_value())
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    return out


def _scrub(value: Any) -> Any:
    value = redact(value)
    if _secrets and isinstance(value, str):
        for secret in _secrets:
            value = value.replace(secret, REDACTED)
    return value


def _trace_id() -> str | None:
    """The current span's trace id, when OpenTelemetry is in use in this process (never imported here)."""
    otel = sys.modules.get("opentelemetry.trace")
    if otel is None:
        return None
    ctx = otel.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the record's whitelisted `swoosh` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": clip_text(_scrub(record.getMessage()), MESSAGE_CHARS),
        }
        fields = getattr(record, "swoosh", None)
        if isinstance(fields, dict):
            out.update({k: _clipped(_scrub(v)) for k, v in fields.items() if k in SAFE_FIELDS})
        wf = getattr(record, "temporal_workflow", None)
        if isinstance(wf, dict):
            out["workflow_id"] = wf.get("workflow_id")
            out["run_id"] = wf.get("run_id")
        if out.get("trace_id") is None:
            trace_id = _trace_id()
            if trace_id is not None:
                out["trace_id"] = trace_id
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            # The traceback, redacted like every other text (an exception message may quote input),
            # and bounded: its last lines (where it was raised) are kept.
            text = _scrub(self.formatException(record.exc_info))
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
