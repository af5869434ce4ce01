"""Faults injected into the real workflow through the SDK's own interceptor mechanism (for tests)."""

from __future__ import annotations

from typing import NoReturn

from temporalio.worker import (
    ContinueAsNewInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)


class FailSnapshotOnce(Interceptor):
    """Fails the first workflow task that snapshots (continue-as-new): the task fails and is retried.

    The run loop snapshots right after the handler of the transition that made it due, in the same
    workflow task, so the retry runs that transition again.
    """

    failed = False

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _FailingInbound


class _FailingOutbound(WorkflowOutboundInterceptor):
    def continue_as_new(self, input: ContinueAsNewInput) -> NoReturn:
        if not FailSnapshotOnce.failed:
            FailSnapshotOnce.failed = True
            _fail()
        super().continue_as_new(input)


def _fail() -> NoReturn:
    raise RuntimeError("injected workflow task failure")


class _FailingInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_FailingOutbound(outbound))
