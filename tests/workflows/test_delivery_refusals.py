"""A store that refuses records (fork, gap, short acknowledgement): the workflow keeps them and says so."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.lifecycle.client import ensure_project, read_health
from swoosh.workflows.messages import DeliveryResult, HealthView, LifecycleSettings
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker

from ..activities.chains import chain

SETTINGS = LifecycleSettings(dr_flush_ms=0)


async def _health_until(env: WorkflowEnvironment, pid: str, cond: Any, timeout_s: float = 20.0) -> HealthView:
    for _ in range(int(timeout_s * 10)):
        try:
            health = await asyncio.wait_for(read_health(env.client, pid), 2.0)
            if cond(health):
                return health
        except (TimeoutError, RPCError):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"health never reached the condition (last: {health})")


async def test_a_forked_store_is_reported_in_health_and_nothing_is_marked_delivered(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    pid = factory.project_id
    sink = JsonlSink(tmp_path / "decisions")
    await sink.deliver(pid, chain(10, "an earlier life of this project"))  # e.g. before a `workflow reset`
    async with lifecycle_worker(tsenv.client, facts=facts, sink=sink) as tq:
        await ensure_project(tsenv.client, pid, signers.keyring(), tq, settings=SETTINGS)
        d = LifecycleDriver.for_client(tsenv.client, factory, open_window=facts.open_window)
        for name in ("Boot_ConfigOk", "Boot_Licensed"):
            await d.step(name)
        health = await _health_until(tsenv, pid, lambda h: h.delivery_refused is not None)
        refusal = health.delivery_refused
        assert refusal is not None and refusal.kind == "fork" and refusal.index == 1
        assert health.status == "degraded" and health.delivered_index == 0 and health.undelivered == 2
        assert len(sink.read(pid, 0, 100)) == 10  # nothing of the new chain was written over the old one

        # The operator moves the other chain aside; the next attempt after the back-off delivers.
        shutil.move(sink.path(pid), tmp_path / "forked-chain.jsonl")
        await tsenv.sleep(timedelta(minutes=2))
        health = await _health_until(tsenv, pid, lambda h: h.undelivered == 0)
        assert health.delivery_refused is None and health.status == "ok" and health.delivered_index == 2
        assert [r["transition"] for r in sink.read(pid, 0, 100)] == ["Boot_ConfigOk", "Boot_Licensed"]


class _ShortAckSink:
    """Answers like the old tail-only sink did after a reset: 'all skipped', up to an older index."""

    def __init__(self, inner: JsonlSink) -> None:
        self.inner, self.short = inner, True
        self.kind = "jsonl"

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if self.short:
            return DeliveryResult(delivered=0, skipped=len(records) - 1, last_index=0)
        return await self.inner.deliver(project_id, records)


async def test_an_acknowledgement_short_of_the_batch_is_not_counted_as_delivered(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    pid = factory.project_id
    jsonl = JsonlSink(tmp_path / "decisions")
    sink = _ShortAckSink(jsonl)
    async with lifecycle_worker(tsenv.client, facts=facts, sink=sink) as tq:  # type: ignore[arg-type]
        await ensure_project(tsenv.client, pid, signers.keyring(), tq, settings=SETTINGS)
        d = LifecycleDriver.for_client(tsenv.client, factory, open_window=facts.open_window)
        await d.step("Boot_ConfigOk")
        health = await _health_until(tsenv, pid, lambda h: h.delivery_refused is not None)
        assert health.delivery_refused is not None and health.delivery_refused.kind == "refused"
        assert health.undelivered == 1 and health.delivered_index == 0
        sink.short = False
        await tsenv.sleep(timedelta(minutes=2))
        health = await _health_until(tsenv, pid, lambda h: h.undelivered == 0)
        assert health.delivery_refused is None and [r["index"] for r in jsonl.read(pid, 0, 10)] == [1]
