"""The workflow sandbox configuration: pass through modules that are deterministic or heavy to re-import.

It also removes a per-payload cost of the SDK's sandbox. For every payload a workflow task carries
(Update arguments and results, activity inputs and results, summaries), the worker asks the workflow
instance for the payload's serialization context. In the stock sandbox runner each such question
compiles and `exec`s a small code string inside the sandbox, with the sandbox's import hooks applied:
in a SWOOSH workflow task that was about a third of the worker's CPU. The answer is a pure function of
the instance's own state (its info and pending commands): no import, no I/O, no workflow code. So
`workflow_runner()` asks the sandboxed instance directly; workflow code itself still runs inside the
sandbox exactly as before.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

logger = logging.getLogger(__name__)

# The pure core is deterministic by construction (no clock, randomness or I/O), so sharing it with the
# worker process is safe and avoids re-importing it for every workflow run. So are the workflow's
# pure units (outbox, fence, views); the workflow module itself and its Temporal-facing units stay
# sandboxed.
CORE = tuple(
    f"swoosh.workflows.{m}"
    for m in (
        "ids",
        "canonical",
        "hlc",
        "crypto",
        "keyring",
        "identities",
        "proposal",
        "statechart",
        "statechart_meaning",
        "document",
        "inputs",
        "reducer",
        "engine",
        "engine_config",
        "limits",
        "answers",
        "decision",
        "errors",
        "messages",
        "lifecycle.outbox",
        "lifecycle.fence",
        "lifecycle.views",
        "lifecycle.inbox",
        "lifecycle.dryrun",
    )
)
# OpenTelemetry's API holds process-wide state (the tracer provider, the context variable): workflow
# code must see the worker's, as Temporal's OpenTelemetry plugin also arranges.
PASSTHROUGH = (
    "pydantic", "pydantic_core", "cryptography", "yaml", "annotated_types", "opentelemetry", "swoosh.guards", *CORE
)  # fmt: skip

# The object the stock runner creates inside the sandbox and calls through `exec`.
_IN_SANDBOX = "__temporal_in_sandbox"

try:  # The stock runner's instance class is private to the SDK: use it only while it looks as expected.
    from temporalio.worker.workflow_sandbox._runner import _Instance as _StockInstance
except ImportError:  # pragma: no cover - depends on the installed SDK
    _StockInstance = None  # type: ignore[assignment, misc]


if _StockInstance is not None:

    class _DirectContextInstance(_StockInstance):
        """A sandboxed workflow instance that answers serialization-context questions without `exec`."""

        def _inner(self) -> Any:
            scope = getattr(self, "globals_and_locals", None)
            return scope.get(_IN_SANDBOX) if isinstance(scope, dict) else None

        def get_serialization_context(self, command_info: Any) -> Any:
            inner = self._inner()
            if inner is None:
                return super().get_serialization_context(command_info)
            return inner.get_serialization_context(command_info)

        def get_external_store_context(self, command_info: Any) -> Any:
            inner = self._inner()
            if inner is None:
                return super().get_external_store_context(command_info)
            return inner.get_external_store_context(command_info)


class DirectContextSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """The SDK's sandboxed runner; payload contexts are read from the instance directly (see module doc)."""

    def create_instance(self, det: Any) -> Any:
        if _StockInstance is None:  # pragma: no cover - depends on the installed SDK
            return super().create_instance(det)
        return _DirectContextInstance(det, self.runner_class, self.restrictions)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The runner every SWOOSH worker and replayer uses."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    if _StockInstance is None:  # pragma: no cover - depends on the installed SDK
        logger.warning("the installed temporalio sandbox changed shape: using its stock (slower) runner")
        return SandboxedWorkflowRunner(restrictions=restrictions)
    return DirectContextSandboxedWorkflowRunner(restrictions=restrictions)
