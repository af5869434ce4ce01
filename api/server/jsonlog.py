"""The API's log events: accepted and rejected transitions, HTTP problems, lifecycle events.

Each is a stdlib log record whose fields ride in `extra={"swoosh": {...}}`; the process's JSON
formatter (`swoosh.worker.logs`) writes only whitelisted fields, so tokens, signatures, private keys
and Authorization headers cannot reach the log by accident; a request's token appears only as its
label (`token_label`). Messages are built from those fields,
never from request bodies or headers.
"""

from __future__ import annotations

import logging
from typing import Any

from swoosh.workflows.answers import Accepted, DryRunAnswer, Rejected

LOGGER_NAME = "swoosh.api"
log = logging.getLogger(LOGGER_NAME)


def _emit(level: int, msg: str, exc: BaseException | None = None, **fields: Any) -> None:
    log.log(level, msg, exc_info=exc, extra={"swoosh": fields})


def accepted(answer: Accepted, window_id: str | None, token: str | None = None) -> None:
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
        token_label=token,
    )


def rejected(
    project_id: str | None, transition: str | None, idem_key: str | None, answer: Rejected, token: str | None = None
) -> None:
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
        token_label=token,
    )


def dry_run(project_id: str, transition: str | None, answer: DryRunAnswer) -> None:
    _emit(
        logging.INFO,
        f"dry run of {transition or '?'}: {'would be accepted' if answer.accepted else answer.error}",
        event="transition_dry_run",
        project_id=project_id,
        transition=transition,
        accepted=answer.accepted,
        error=answer.error,
        failing_guard=answer.failing_guard,
        head_hash=answer.head_hash,
    )


def problem(
    project_id: str | None,
    method: str,
    path: str,
    status: int,
    error: str,
    reason: str,
    retry_after: int | None,
    token: str | None = None,
    exc: BaseException | None = None,
) -> None:
    _emit(
        logging.ERROR if status == 500 else logging.WARNING if status >= 500 else logging.INFO,
        f"{method} {path} -> {status} {error}",
        exc,
        event="http_problem",
        project_id=project_id,
        method=method,
        path=path,
        status=status,
        error=error,
        reason=reason,
        retry_after=retry_after,
        token_label=token,
    )


def event(msg: str, level: int = logging.INFO, exc: BaseException | None = None, **fields: Any) -> None:
    """A lifecycle or diagnostic event; `exc` adds its (redacted) traceback to the line."""
    _emit(level, msg, exc, event=fields.pop("event", "api"), **fields)
