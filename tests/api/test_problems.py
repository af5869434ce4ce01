"""How Temporal's failures become HTTP answers: transport trouble is a 503, overload a 429, never a 500."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from swoosh.api.server.problems import (
    InternalProblem,
    NotFoundProblem,
    OverloadedProblem,
    SetupProblem,
    UnavailableProblem,
    translate,
)
from swoosh.workflows.lifecycle.client import resendable, unprocessed


def rpc(status: RPCStatusCode, message: str) -> RPCError:
    return RPCError(message, status, b"")


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (RPCStatusCode.UNKNOWN, "transport error"),  # seen while a dev server restarted under load
        (RPCStatusCode.UNAVAILABLE, "connection refused"),
        (RPCStatusCode.DEADLINE_EXCEEDED, "deadline"),
        (RPCStatusCode.CANCELLED, "operation was cancelled"),
        (RPCStatusCode.ABORTED, "aborted"),
        (RPCStatusCode.INTERNAL, "shard status unknown"),
        (RPCStatusCode.UNAUTHENTICATED, "bad api key"),
        (RPCStatusCode.PERMISSION_DENIED, "not allowed"),
    ],
)
def test_transport_and_server_failures_are_503_with_retry_after(status: RPCStatusCode, message: str) -> None:
    problem = translate(rpc(status, message), "p-1")
    assert isinstance(problem, UnavailableProblem) and not isinstance(problem, SetupProblem)
    assert problem.status == 503 and problem.headers()["Retry-After"] == "5"
    assert "api key" not in problem.reason  # refused credentials: the reason does not echo the server's text


def test_resource_exhausted_is_always_429_with_retry_after() -> None:
    problem = translate(rpc(RPCStatusCode.RESOURCE_EXHAUSTED, "too many in-flight updates"), "p-1")
    assert isinstance(problem, OverloadedProblem) and problem.headers()["Retry-After"] == "1"


def test_an_rpc_error_wrapped_by_the_sdk_is_found() -> None:
    wrapped = WorkflowUpdateRPCTimeoutOrCancelledError()
    wrapped.__cause__ = rpc(RPCStatusCode.UNKNOWN, "transport error")
    problem = translate(wrapped, "p-1")
    assert isinstance(problem, UnavailableProblem) and "UNKNOWN" in problem.reason


def test_undefined_search_attribute_points_at_swoosh_setup() -> None:
    problem = translate(rpc(RPCStatusCode.INVALID_ARGUMENT, "search attribute SwooshTop is not defined"))
    assert isinstance(problem, SetupProblem) and problem.error == "setup_required" and "swoosh setup" in problem.reason


def test_unknown_project_is_404_and_a_real_bug_stays_500() -> None:
    assert isinstance(translate(rpc(RPCStatusCode.NOT_FOUND, "workflow not found")), NotFoundProblem)
    assert isinstance(translate(rpc(RPCStatusCode.INVALID_ARGUMENT, "malformed request")), InternalProblem)


async def test_resource_exhausted_while_checking_the_namespace_is_429() -> None:
    from swoosh.api.server.sources import ClientSource

    async def busy(client: object) -> str | None:
        raise rpc(RPCStatusCode.RESOURCE_EXHAUSTED, "namespace rate limit exceeded")

    async def provider() -> object:
        return object()

    source = ClientSource(provider, setup_check=busy)  # type: ignore[arg-type]
    with pytest.raises(OverloadedProblem) as err:
        await source.get()
    assert err.value.headers()["Retry-After"] == "1"


@pytest.mark.parametrize(
    "cause",
    [
        ApplicationError(
            "Workflow Update is rejected because it wasn't processed by worker.", type="UnprocessedUpdate"
        ),
        ApplicationError("UnprocessedUpdate: Workflow Update is rejected because it wasn't processed by worker."),
    ],
)
def test_an_update_temporal_dropped_unprocessed_is_503_and_resent(cause: ApplicationError) -> None:
    """Seen while the dev server restarted under load: it was answered 500. Nothing was applied, so the
    client resends it (`resendable`) and the API answers 503 + Retry-After when it stays dropped."""
    err = WorkflowUpdateFailedError(cause)
    assert unprocessed(err) and resendable(err)
    problem = translate(err, "p1")
    assert isinstance(problem, UnavailableProblem) and problem.status == 503 and "idem_key" in problem.reason
    assert not unprocessed(WorkflowUpdateFailedError(ApplicationError("other", type="Other")))
