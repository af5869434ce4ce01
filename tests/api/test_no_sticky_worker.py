"""A worker without sticky cache (`swoosh worker --no-sticky`, used by `make determinism`) stays live.

Without a cache the SDK core evicts the least recently used run after each completed workflow task.
With several tasks in flight that can be another run still waiting on its guard local activity: the
activity is cancelled, that run's task is never answered and times out on the server. This test
makes exactly that overlap happen on the real dev server, with the worker `build_worker` makes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client._factory import ProposalFactory, Signers
from swoosh.worker.run_worker import build_worker
from swoosh.workflows.answers import Accepted
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_state
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.environment import FakeFacts

from .conftest import Stack

GUARD_SECONDS = 3.0


@dataclass
class OneSlowGuard(FakeFacts):
    """The next guard evaluation after `arm()` takes GUARD_SECONDS; every other one is immediate."""

    armed: bool = False
    slow_started: asyncio.Event | None = None

    def arm(self) -> None:
        self.armed, self.slow_started = True, asyncio.Event()

    async def facts(self, now_ms: int, **kw: Any) -> Any:
        if self.armed:
            self.armed = False
            assert self.slow_started is not None
            self.slow_started.set()
            await asyncio.sleep(GUARD_SECONDS)
        return await super().facts(now_ms, **kw)


async def _licensed(client: Client, factory: ProposalFactory) -> tuple[Accepted, float]:
    state = await read_state(client, factory.project_id)
    started = time.monotonic()
    answer = await propose(client, factory.project_id, ProposalRequest(body=factory.body("Boot_Licensed", state.hash)))
    assert isinstance(answer, Accepted), answer
    return answer, time.monotonic() - started


async def _scenario(target: str, tmp: Path) -> tuple[float, list[str]]:
    client = await Client.connect(target, data_converter=pydantic_data_converter)
    facts = OneSlowGuard()
    signers = Signers.generate()
    tq = f"swoosh-nosticky-{uuid.uuid4().hex[:8]}"
    worker = build_worker(client, tq, facts, JsonlSink(tmp / "decisions"), no_sticky=True)
    slow, quick = (ProposalFactory(signers, f"ns-{name}-{uuid.uuid4().hex[:6]}") for name in ("slow", "quick"))
    async with worker:
        for f in (slow, quick):
            await ensure_project(client, f.project_id, signers.keyring(), tq)
            state = await read_state(client, f.project_id)
            answer = await propose(client, f.project_id, ProposalRequest(body=f.body("Boot_ConfigOk", state.hash)))
            assert isinstance(answer, Accepted), answer
        facts.arm()
        slow_task = asyncio.create_task(_licensed(client, slow))
        assert facts.slow_started is not None
        await asyncio.wait_for(facts.slow_started.wait(), 20)
        # While the slow project's guard runs, another project's workflow task completes.
        await _licensed(client, quick)
        _, slow_seconds = await asyncio.wait_for(slow_task, 60)
    events = []
    async for event in client.get_workflow_handle(workflow_id(slow.project_id)).fetch_history_events():
        if event.event_type in (
            EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
            EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
        ):
            events.append(EventType.Name(event.event_type))
    return slow_seconds, events


def test_a_run_waiting_on_its_guard_survives_another_run_completing(stack: Stack, tmp_path: Path) -> None:
    slow_seconds, failed_tasks = stack.bg.run(_scenario(stack.target, tmp_path), timeout=120)
    assert failed_tasks == [], f"the slow project's workflow task did not complete first time: {failed_tasks}"
    # The guard takes GUARD_SECONDS; a lost task would add the 10 s workflow task timeout.
    assert slow_seconds < GUARD_SECONDS + 5, slow_seconds
