"""HTTP-level failures of the API and the translation of Temporal client errors into them.

Contract rejections (400) are answers, not errors, and never pass through here. Everything else a
route can fail with is an `HttpProblem`: 401, 403, 404, 409, 413, 429, 503 (and 500 for a bug). Temporal's
exceptions are mapped at this one boundary so no route sees an `RPCError`.
"""

from __future__ import annotations

import asyncio

from temporalio.client import (
    WorkflowQueryFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from swoosh.workflows.errors import clip_text
from swoosh.workflows.lifecycle.client import ProjectClosed, is_closed, turned_away, unavailable, unprocessed

UNAVAILABLE_RETRY_AFTER_S = 5
OVERLOADED_RETRY_AFTER_S = 1
SETUP_RETRY_AFTER_S = 30


class HttpProblem(Exception):
    """A non-contract HTTP failure: status, stable error word, reason, optional Retry-After."""

    status: int = 500
    error: str = "internal"

    def __init__(self, reason: str, retry_after: int | None = None) -> None:
        reason = clip_text(reason)
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return headers


class UnauthorizedProblem(HttpProblem):
    status, error = 401, "unauthorized"


class ForbiddenProblem(HttpProblem):
    status, error = 403, "forbidden"


class NotFoundProblem(HttpProblem):
    status, error = 404, "not_found"


class ClosedProblem(HttpProblem):
    """409: the project's workflow is closed; it is never started again and takes no transition."""

    status, error = 409, "closed"


class PayloadTooLargeProblem(HttpProblem):
    status, error = 413, "payload_too_large"


class OverloadedProblem(HttpProblem):
    status, error = 429, "overloaded"

    def __init__(self, reason: str, retry_after: int | None = OVERLOADED_RETRY_AFTER_S) -> None:
        super().__init__(reason, retry_after)


class UnavailableProblem(HttpProblem):
    status, error = 503, "unavailable"

    def __init__(self, reason: str, retry_after: int | None = UNAVAILABLE_RETRY_AFTER_S) -> None:
        super().__init__(reason, retry_after)


class RecordsUnavailableProblem(UnavailableProblem):
    """Decision records a page needs are neither held by the workflow nor readable from the store."""

    error = "records_unavailable"


class SetupProblem(UnavailableProblem):
    """The namespace is not prepared for SWOOSH: an operator runs `swoosh setup`."""

    error = "setup_required"

    def __init__(self, reason: str, retry_after: int | None = SETUP_RETRY_AFTER_S) -> None:
        super().__init__(reason, retry_after)


class GuardsUnavailableProblem(UnavailableProblem):
    """The project is reachable but could not decide: its guards could not be evaluated (a provider down)."""

    error = "guards_unavailable"


class QuotaProblem(HttpProblem):
    """PUT of a new project while as many as the quota run already: nothing was started."""

    status, error = 409, "project_quota"


class InternalProblem(HttpProblem):
    status, error = 500, "internal"


class QueryFailed(Exception):
    """A workflow query raised (e.g. an unknown projection): the caller's input was wrong."""


# The transport failed or Temporal itself failed (e.g. while it restarts: `UNKNOWN: transport error`):
# nothing says the request was wrong, and resending it (same idem_key) is safe.
_UNREACHABLE = (
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.ABORTED,
    RPCStatusCode.INTERNAL,
)
# Temporal refuses SWOOSH's own credentials: the operator's configuration, not the caller's request.
_REFUSED = (RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.PERMISSION_DENIED)


def rpc_error_in(err: BaseException) -> RPCError | None:
    """The RPCError `err` is or was caused by (the SDK wraps some), or None."""
    seen = 0
    cur: BaseException | None = err
    while cur is not None and seen < 8:
        if isinstance(cur, RPCError):
            return cur
        cur, seen = cur.__cause__, seen + 1
    return None


def translate(err: BaseException, project_id: str | None = None) -> BaseException:
    """The HttpProblem (or QueryFailed) a Temporal client error means; other errors unchanged."""
    what = f"project {project_id}" if project_id else "the project"
    rpc = rpc_error_in(err) if not turned_away(err) else None
    if rpc is not None:
        err = rpc
    if isinstance(err, ProjectClosed):
        return ClosedProblem(str(err))
    if isinstance(err, WorkflowAlreadyStartedError):  # the id reuse policy refused to start a closed project again
        return ClosedProblem(str(ProjectClosed(project_id or "?")))
    if isinstance(err, RPCError):
        if is_closed(err):
            return ClosedProblem(f"{what} is closed: it takes no transitions (its state stays readable)")
        if err.status == RPCStatusCode.NOT_FOUND:
            return NotFoundProblem(f"{what} does not exist")
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
            return OverloadedProblem(f"Temporal is at its limit for {what}; retry later")
        if err.status in _UNREACHABLE:
            return UnavailableProblem(f"Temporal cannot be reached ({err.status.name}: {err.message[:200]})")
        if err.status in _REFUSED:
            return UnavailableProblem(f"Temporal refused SWOOSH's credentials ({err.status.name}); see the API log")
        if err.status == RPCStatusCode.INVALID_ARGUMENT and "search attribute" in err.message.lower():
            return SetupProblem(f"Temporal refused a search attribute ({err.message[:200]}): run `swoosh setup`")
        if err.status == RPCStatusCode.FAILED_PRECONDITION and "completed" in err.message.lower():
            return ClosedProblem(f"{what} is closed: it takes no transitions (its state stays readable)")
        if err.status == RPCStatusCode.FAILED_PRECONDITION or "workflow task" in err.message.lower():
            # The project's workflow cannot take work right now (a workflow task is failing or not
            # yet processed, e.g. while a worker recovers): a transient condition, not a bug.
            return UnavailableProblem(f"{what} cannot answer right now ({err.message}); retry later")
        return InternalProblem(f"Temporal answered {err.status.name}: {err.message}")
    if unprocessed(err):
        return UnavailableProblem(
            f"Temporal dropped the transition to {what} before the workflow processed it (a server restart?); "
            "nothing was applied: resend it with the same idem_key"
        )
    reason = turned_away(err)  # the workflow says why: a task being recovered, the decision sink behind
    if reason is not None:
        return OverloadedProblem(f"{what}: {reason}")
    reason = unavailable(err)  # its guards could not be evaluated (a fact provider down past the retries)
    if reason is not None:
        return GuardsUnavailableProblem(f"{what}: {reason}")
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return UnavailableProblem("the transition was not answered in time; resend it with the same idem_key")
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return UnavailableProblem("Temporal did not answer in time; resend with the same idem_key")
    if isinstance(err, WorkflowQueryFailedError):
        return QueryFailed(str(err))
    if isinstance(err, RuntimeError) and "connect" in str(err).lower():
        return UnavailableProblem("Temporal cannot be reached (connection failed)")
    if isinstance(err, ConnectionError):
        return UnavailableProblem("Temporal cannot be reached (connection failed)")
    return err
