"""The workflow's side of guards: the local activity that evaluates them, and the Update failures it sends.

A guard's verdict (`ok` or not) is a decision; a guard activity that fails after its retries is an
outage: `evaluate_guards` raises `GuardsUnavailable`, and the workflow leaves the proposal undecided
(the Update fails `SwooshUnavailable`, a Signal gets a rejection-log entry) instead of failing.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

from swoosh.guards.context import GuardContext
from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.answers import GuardResult, Rejected
from swoosh.workflows.engine import Admitted, Engine
from swoosh.workflows.errors import clip_text
from swoosh.workflows.lifecycle.tuning import GUARD_RETRY
from swoosh.workflows.messages import (
    ACTIVITY_GUARDS,
    REJECTION_ERROR_TYPE,
    RETRY_LATER_ERROR_TYPE,
    UNAVAILABLE_ERROR_TYPE,
    GuardRequest,
    GuardResponse,
)


class GuardsUnavailable(Exception):
    """The guard activity failed after its retries: the proposal was not decided, nothing changed."""

    def __init__(self, reason: str, failure: FailureError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failure = failure


async def evaluate_guards(engine: Engine, admitted: Admitted, timeout_ms: int, now_ms: int) -> list[GuardOutcome]:
    """The admitted proposal's guard outcomes, from the guard local activity (none when it has no guards)."""
    spec, p = admitted.transition.spec, admitted.proposal
    if not spec.guards:
        return []
    context = GuardContext(
        project_id=engine.project_id,
        transition=spec.name,
        signer=p.signer,
        window_id=p.window_id,
        window_class=spec.window,
        evidence=tuple(p.evidence),
    )
    request = GuardRequest(
        guards=list(spec.guards), state=engine.document, inputs=p.inputs, context=context, now_ms=now_ms
    )
    try:
        response = await workflow.execute_local_activity(
            ACTIVITY_GUARDS,
            request,
            result_type=GuardResponse,
            start_to_close_timeout=timedelta(milliseconds=timeout_ms),
            retry_policy=GUARD_RETRY,
            summary=f"guards {', '.join(spec.guards)} for {spec.name}",
        )
    except FailureError as err:
        if isinstance(err, CancelledError):
            raise
        # A fact provider down (or hanging) past the guard's retries: an outage, not a verdict on the
        # proposal. (A local activity's last failure arrives as itself: ApplicationError, TimeoutError.)
        cause = err.cause if isinstance(err, ActivityError) and err.cause is not None else err
        reason = clip_text(
            f"the guards {', '.join(spec.guards)} of {spec.name} could not be evaluated "
            f"({type(cause).__name__}: {cause}); nothing changed, resend the same proposal later"
        )
        workflow.logger.warning("guard activity failed after its retries: %s", reason)
        raise GuardsUnavailable(reason, err) from None
    return list(response.outcomes)


def result_of(o: GuardOutcome) -> GuardResult:
    return GuardResult(guard=o.guard, ok=o.ok, reasons=list(o.reasons))


def rejection_error(rejected: Rejected) -> ApplicationError:
    """The Update failure that carries a contract rejection (the API maps it to a 400)."""
    return ApplicationError(
        f"{rejected.error}: {rejected.reason}",
        rejected.model_dump(mode="json"),
        type=REJECTION_ERROR_TYPE,
        non_retryable=True,
    )


def retry_later(reason: str) -> ApplicationError:
    """An Update turned away unseen (nothing written): the caller resends the same proposal."""
    return ApplicationError(reason, type=RETRY_LATER_ERROR_TYPE, non_retryable=True)


def unavailable(reason: str) -> ApplicationError:
    """An Update accepted but left undecided (its guards could not be evaluated): resend it later."""
    return ApplicationError(reason, type=UNAVAILABLE_ERROR_TYPE, non_retryable=True)
