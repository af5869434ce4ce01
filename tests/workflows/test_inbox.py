"""The signal inbox is bounded in bytes: a proposal that would not fit is refused and logged, never queued."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_head, read_rejections, signal_proposal
from swoosh.workflows.lifecycle.inbox import INBOX_FULL, size_of
from swoosh.workflows.limits import INBOX_BYTES
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker
from tests.workflows.test_lifecycle import _wait_for


@dataclass
class SlowFacts(FakeFacts):
    delay_s: float = 0.0

    async def facts(self, now_ms: int, **kw: Any) -> Any:
        await asyncio.sleep(self.delay_s)
        return await super().facts(now_ms, **kw)


def _big(factory: ProposalFactory, head: str, size: int, n: int) -> ProposalRequest:
    items = [f"git://example/{n}/{i}/".ljust(3900, "x") for i in range(size // 4000)]
    return ProposalRequest(body=factory.body("Ingestion_SourcesResolved", head, {"sources": items}))


async def test_a_proposal_larger_than_the_inbox_is_refused_and_logged(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory
) -> None:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue)
    head = (await read_head(tsenv.client, factory.project_id)).hash
    huge = _big(factory, head, INBOX_BYTES + 20_000, 0)
    assert size_of(huge) > INBOX_BYTES
    await signal_proposal(tsenv.client, factory.project_id, huge)

    async def logged() -> bool:
        return any(e.error == INBOX_FULL for e in await read_rejections(tsenv.client, factory.project_id))

    await _wait_for(logged)
    entry = next(e for e in await read_rejections(tsenv.client, factory.project_id) if e.error == INBOX_FULL)
    assert entry.idem_key == huge.body["idem_key"] and f"takes at most {INBOX_BYTES}" in entry.reason
    small = ProposalRequest(body=factory.body("Boot_ConfigOk", head, {}))
    await signal_proposal(tsenv.client, factory.project_id, small)

    async def applied() -> bool:
        return (await read_head(tsenv.client, factory.project_id)).index == 1

    await _wait_for(applied)


async def test_signals_that_together_pass_the_inbox_limit_are_refused_past_it(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, tmp_path: Path
) -> None:
    facts = SlowFacts()
    async with lifecycle_worker(tsenv.client, facts=facts, sink_dir=tmp_path / "decisions") as tq:
        await ensure_project(tsenv.client, factory.project_id, signers.keyring(), tq)
        d = LifecycleDriver.for_client(tsenv.client, factory)
        await d.step("Boot_ConfigOk")
        assert d.head is not None
        facts.delay_s = 2.0  # the Update's guard holds the run loop while the signals arrive
        update = asyncio.create_task(
            propose(tsenv.client, factory.project_id, ProposalRequest(body=factory.body("Boot_Licensed", d.head, {})))
        )
        await asyncio.sleep(0.5)
        sent = [_big(factory, d.head, INBOX_BYTES // 2 - 12_000, n) for n in range(3)]
        sizes = [size_of(r) for r in sent]
        assert sum(sizes[:2]) <= INBOX_BYTES < sum(sizes)  # two fit, the third does not
        for req in sent:
            await signal_proposal(tsenv.client, factory.project_id, req)
        await update

        async def logged() -> bool:
            return any(e.error == INBOX_FULL for e in await read_rejections(tsenv.client, factory.project_id))

        await _wait_for(logged)
        full = [e for e in await read_rejections(tsenv.client, factory.project_id) if e.error == INBOX_FULL]
        assert [e.idem_key for e in full] == [sent[2].body["idem_key"]]
