"""Independent replicas: replay histories with the real workflow code and read the replayed state.

A replica is one `Replayer` pass over a project's runs. An interceptor records, during the replay,
every Update answer's `(index, state_post_hash)` and every continue-as-new snapshot's hash, and keeps
the replayed workflow instance so its final head can be read when the replay ends. Several passes,
each with a fresh Replayer, must agree with each other, with the pure fold and with the live workflow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import (
    ContinueAsNewInput,
    ExecuteWorkflowInput,
    HandleUpdateInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from swoosh.workflows.answers import Accepted
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.messages import LifecycleInput


@dataclass
class ReplicaRun:
    run_id: str
    hashes: dict[int, str] = field(default_factory=dict)  # index -> state_post_hash, from Update answers
    snapshot: tuple[int, str] | None = None  # (index, hash) handed to continue-as-new
    final: tuple[int, str] | None = None  # (index, head) of the replayed instance at the end
    failure: str | None = None


@dataclass
class Replica:
    """One replay pass over many histories."""

    runs: dict[str, ReplicaRun] = field(default_factory=dict)
    instances: dict[str, Any] = field(default_factory=dict)

    def run(self, run_id: str) -> ReplicaRun:
        return self.runs.setdefault(run_id, ReplicaRun(run_id))


class _Probe(Interceptor):
    def __init__(self, replica: Replica) -> None:
        self.replica = replica

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        replica = self.replica

        class Outbound(WorkflowOutboundInterceptor):
            def continue_as_new(self, input: ContinueAsNewInput) -> Any:
                arg = input.args[0] if input.args else None
                if isinstance(arg, LifecycleInput):
                    doc = arg.snapshot.document
                    replica.run(workflow.info().run_id).snapshot = (int(doc["meta"]["index"]), content_hash(doc))
                return super().continue_as_new(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                # Keep the replayed instance: its engine's head is read when the replay ends.
                replica.instances[workflow.info().run_id] = workflow.instance()
                return await super().execute_workflow(input)

            async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
                result = await super().handle_update_handler(input)
                if isinstance(result, Accepted) and not result.duplicate:
                    replica.run(workflow.info().run_id).hashes[result.index] = result.state_post_hash
                return result

        return Inbound


async def replica_pass(histories: list[WorkflowHistory], converter: DataConverter | None = None) -> Replica:
    """Replay every history with a fresh Replayer; collect what the replayed workflows computed.

    `converter`: the processes' data converter (encrypted histories need its keys); default plaintext.
    """
    replica = Replica()
    replayer = Replayer(
        workflows=[ProjectLifecycle],
        data_converter=converter or data_converter(),
        workflow_runner=workflow_runner(),
        interceptors=[_Probe(replica)],
    )
    for h in histories:
        result = await replayer.replay_workflow(h, raise_on_replay_failure=False)
        run = replica.run(h.run_id)
        if result.replay_failure is not None:
            run.failure = str(result.replay_failure)
        instance = replica.instances.get(h.run_id)
        engine = getattr(instance, "engine", None)
        if engine is not None:
            run.final = (engine.index, engine.head_hash)
    replica.instances.clear()
    return replica
