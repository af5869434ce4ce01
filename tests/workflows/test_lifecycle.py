"""The ProjectLifecycle workflow end to end on the time-skipping test server (real workflow code)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.decision import verify_chain
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import (
    ensure_project,
    propose,
    read_decisions,
    read_head,
    read_health,
    read_rejections,
    read_state,
    request_snapshot,
    signal_proposal,
)
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LOOP, LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts


async def _driver(
    env: WorkflowEnvironment,
    tq: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    settings: LifecycleSettings | None = None,
    config: EngineConfig | None = None,
) -> LifecycleDriver:
    await ensure_project(env.client, factory.project_id, signers.keyring(), tq, config=config, settings=settings)
    return LifecycleDriver.for_client(env.client, factory, open_window=facts.open_window)


async def _wait_for(cond, timeout_s: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll `cond`; a query that lands while the run continues-as-new may time out on the test server."""
    for _ in range(int(timeout_s * 10)):
        try:
            if await asyncio.wait_for(cond(), 2.0):
                return
        except (TimeoutError, RPCError):
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_lifecycle_full_run_reaches_execution_and_loops_twice(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.lifecycle()
    await d.loop(2)
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "EXECUTION"
    assert state.phase["execution"] == "PLAN"
    assert state.projection["execution"]["cycle"] == 2
    assert state.index == 13 + 2 * len(LOOP)
    assert state.hash == d.head
    assert state.projection["epoch"]["execution"] == 1 + 2 * len(LOOP)


async def test_lifecycle_decision_records_chain_and_reach_the_sink(
    tsenv: WorkflowEnvironment,
    task_queue: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    tmp_path: Path,
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.lifecycle()
    page = await read_decisions(tsenv.client, factory.project_id)
    assert [r["index"] for r in page.records] == list(range(1, 14))
    assert verify_chain(page.records) is None
    assert all(r["ucxl"].startswith("ucxl://") for r in page.records)
    licensed = page.records[1]
    assert licensed["guards"][0]["guard"] == "license" and licensed["guards"][0]["ok"]
    sink = tmp_path / "decisions" / f"{factory.project_id}.jsonl"

    async def delivered() -> bool:
        await tsenv.sleep(timedelta(seconds=2))
        return sink.exists() and len(sink.read_text().splitlines()) == 13

    await _wait_for(delivered)
    health = await read_health(tsenv.client, factory.project_id)
    assert health.delivered_index == 13 and health.undelivered == 0


async def test_lifecycle_snapshot_every_few_transitions_preserves_hash_dedupe_and_chain(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts, settings=LifecycleSettings(snapshot_every=3))
    first = await d.step("Boot_ConfigOk")
    replay_body = d.factory.body("Boot_ConfigOk", first.state_pre_hash, {}, idem_key=first.idem_key)
    for t in (
        "Boot_Licensed",
        "Ingestion_SourcesResolved",
        "Ingestion_BytesOk",
        "Ingestion_SchemaOk",
        "Ingestion_CorpusBuilt",
    ):
        await d.step(t)
    health = await read_health(tsenv.client, factory.project_id)
    assert health.runs >= 1, "small snapshot_every must have continued-as-new"
    state = await read_state(tsenv.client, factory.project_id)
    assert state.hash == d.head and state.index == 6
    # same idem_key and content after the snapshot: the original answer, nothing applied
    dup = await propose(tsenv.client, factory.project_id, ProposalRequest(body=replay_body))
    assert isinstance(dup, Accepted) and dup.duplicate and dup.index == 1
    assert dup.state_post_hash == first.state_post_hash
    assert (await read_head(tsenv.client, factory.project_id)).hash == state.hash
    # the decision chain continues across runs
    page = await read_decisions(tsenv.client, factory.project_id)
    assert page.records and verify_chain(page.records) is None
    assert [r["index"] for r in page.records] == [1, 2, 3, 4, 5, 6]


async def test_lifecycle_quarantine_is_sticky_until_release(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.lifecycle()
    await d.step("Policy_Quarantine", {"reason": "suspicious corpus"})
    blocked = await d.try_step("Execution_PlanLocked")
    assert isinstance(blocked, Rejected) and blocked.error == "quarantined"
    await d.step("Policy_Release", {"reason": "reviewed by a human"})
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "EXECUTION" and not state.projection["policy"]["quarantined"]
    await d.step("Execution_PlanLocked")


async def test_lifecycle_policy_breach_rejects_and_quarantines(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    leak = {"sources": ["https://example.invalid/?token=abc", "-----BEGIN PRIVATE KEY-----"]}
    answer = await d.try_step("Ingestion_SourcesResolved", leak)
    assert isinstance(answer, Rejected)
    assert answer.error == "guard_failed" and answer.failing_guard == "policy"
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "QUARANTINED"
    assert "pem-private-key" in state.projection["policy"]["rationale"]
    assert "BEGIN PRIVATE KEY" not in str(state.projection)
    page = await read_decisions(tsenv.client, factory.project_id)
    assert page.records[-1]["transition"] == "Policy_Quarantine"
    assert page.records[-1]["signer"] == "swoosh:system"


async def test_lifecycle_pause_and_resume_return_to_where_it_was(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.lifecycle()
    await d.step("Execution_PlanLocked")
    await d.step("Control_Pause", {"reason": "maintenance"})
    paused = await d.try_step("Execution_BeatReviewGate")
    assert isinstance(paused, Rejected) and paused.error == "invalid_transition"
    await d.step("Control_Resume", {"reason": "done"})
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "EXECUTION" and state.phase["execution"] == "WORK"


async def test_lifecycle_license_grace_expires_by_timer(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts, config=EngineConfig(grace_ms=600_000))
    await d.lifecycle()
    facts.license_status = "throttled"
    await d.step("License_Throttled", {"reason": "KACHING throttling"})
    state = await read_state(tsenv.client, factory.project_id)
    assert state.projection["control"]["license"]["phase"] == "DEGRADED_GRACE"
    await tsenv.sleep(timedelta(minutes=11))

    async def expired() -> bool:
        s = await read_state(tsenv.client, factory.project_id)
        return bool(s.projection["control"]["license"]["phase"] == "DEGRADED_EXPIRED")

    await _wait_for(expired)
    s = await read_state(tsenv.client, factory.project_id)
    assert s.projection["control"]["license"]["external_comms"] is False
    page = await read_decisions(tsenv.client, factory.project_id)
    assert page.records[-1]["transition"] == "License_GraceExpired"
    facts.license_status = "valid"
    d.head = None
    await d.step("License_Restored", {})
    s = await read_state(tsenv.client, factory.project_id)
    assert s.projection["control"]["license"]["phase"] == "OK"


async def test_lifecycle_eleven_concurrent_updates_all_answered(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    await _driver(tsenv, task_queue, signers, factory, facts)
    head = (await read_head(tsenv.client, factory.project_id)).hash
    bodies = [factory.body("Boot_ConfigOk", head, {}) for _ in range(11)]
    answers = await asyncio.gather(
        *(propose(tsenv.client, factory.project_id, ProposalRequest(body=b)) for b in bodies)
    )
    accepted = [a for a in answers if isinstance(a, Accepted)]
    rejected = [a for a in answers if isinstance(a, Rejected)]
    assert len(accepted) == 1 and len(rejected) == 10
    assert {r.error for r in rejected} <= {"stale_state_hash", "invalid_transition", "hlc_regression"}
    assert (await read_head(tsenv.client, factory.project_id)).index == 1


async def test_lifecycle_signal_path_applies_and_logs_rejections(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    await _driver(tsenv, task_queue, signers, factory, facts)
    head = (await read_head(tsenv.client, factory.project_id)).hash
    good = factory.body("Boot_ConfigOk", head, {})
    bad = factory.body("Boot_Licensed", head, {})
    await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=good))
    await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=bad))

    async def processed() -> bool:
        return len(await read_rejections(tsenv.client, factory.project_id)) == 1

    await _wait_for(processed)
    log = await read_rejections(tsenv.client, factory.project_id)
    assert log[0].error == "stale_state_hash" and log[0].transition == "Boot_Licensed"
    assert (await read_head(tsenv.client, factory.project_id)).index == 1


async def test_lifecycle_signal_rejections_are_logged_with_bounded_text(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    """A rejection quoting a caller's 60 KB field would otherwise ride in every snapshot."""
    await _driver(tsenv, task_queue, signers, factory, facts)
    head = (await read_head(tsenv.client, factory.project_id)).hash
    # Within the inbox's 128 KiB (a larger signal is refused as inbox_full before it is read at all).
    huge = {**factory.body("Boot_ConfigOk", head, {}), "hlc": "x" * 60_000, "transition": "T" * 40_000}
    await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=huge))

    async def processed() -> bool:
        return len(await read_rejections(tsenv.client, factory.project_id)) == 1

    await _wait_for(processed)
    entry = (await read_rejections(tsenv.client, factory.project_id))[0]
    assert entry.error == "schema"
    assert len(entry.reason) <= 1000 and "hlc" in entry.reason  # the envelope's bounds refuse it unquoted
    assert entry.transition is not None and len(entry.transition) == 64


async def test_lifecycle_forced_snapshot_keeps_state(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.step("Boot_ConfigOk")
    before = await read_state(tsenv.client, factory.project_id)
    await request_snapshot(tsenv.client, factory.project_id)

    async def continued() -> bool:
        return (await read_health(tsenv.client, factory.project_id)).runs == 1

    await _wait_for(continued)
    after = await read_state(tsenv.client, factory.project_id)
    assert after.hash == before.hash
    health = await read_health(tsenv.client, factory.project_id)
    assert health.walLag == 0 and health.lastSnapshotHLC == before.hlc_last
    await d.step("Boot_Licensed")


@pytest.mark.parametrize("transitions", [13])
async def test_lifecycle_workflow_id_is_readable(
    tsenv: WorkflowEnvironment,
    task_queue: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    transitions: int,
) -> None:
    await _driver(tsenv, task_queue, signers, factory, facts)
    desc = await tsenv.client.get_workflow_handle(workflow_id(factory.project_id)).describe()
    assert desc.id == f"swoosh-project-{factory.project_id}"


class _SlowSink:
    """A sink that takes a while, so snapshots happen while a delivery is in flight."""

    def __init__(self, inner: object, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    async def deliver(self, project_id: str, records: list[dict]) -> object:  # type: ignore[type-arg]
        await asyncio.sleep(self.delay_s)
        return await self.inner.deliver(project_id, records)  # type: ignore[attr-defined]


async def test_lifecycle_snapshot_while_delivery_in_flight_keeps_going(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    """Regression: continue-as-new must be the last command even with a delivery activity running."""
    from swoosh.activities.records_jsonl import JsonlSink
    from swoosh.workflows.testing.environment import lifecycle_worker

    sink = JsonlSink(tmp_path / "slow")
    async with lifecycle_worker(tsenv.client, facts=facts, sink=_SlowSink(sink, 0.3)) as tq:
        settings = LifecycleSettings(snapshot_every=2, dr_flush_ms=0, dr_batch=1)
        d = await _driver(tsenv, tq, signers, factory, facts, settings=settings)
        await d.lifecycle()
        await d.loop(1)
        health = await read_health(tsenv.client, factory.project_id)
        assert health.runs >= 5 and health.index == 17

        async def all_delivered() -> bool:
            return len(sink.read(factory.project_id, 0, 100)) == 17

        await _wait_for(all_delivered, timeout_s=30)
        assert verify_chain(sink.read(factory.project_id, 0, 100)) is None


class _DownSink:
    """A sink that fails while `down`, then delivers to the JSONL sink it wraps."""

    def __init__(self, inner: object) -> None:
        self.inner, self.down = inner, True

    async def deliver(self, project_id: str, records: list[dict]) -> object:  # type: ignore[type-arg]
        if self.down:
            raise ConnectionError("BUBBLE is down")
        return await self.inner.deliver(project_id, records)  # type: ignore[attr-defined]


async def test_lifecycle_turns_new_transitions_away_while_the_decision_sink_is_behind(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    """Back-pressure instead of an unbounded snapshot: nothing is lost, the caller resends later."""
    from temporalio.client import WorkflowUpdateFailedError

    from swoosh.activities.records_jsonl import JsonlSink
    from swoosh.workflows.lifecycle.client import turned_away
    from swoosh.workflows.testing.environment import lifecycle_worker

    jsonl = JsonlSink(tmp_path / "down")
    sink = _DownSink(jsonl)
    async with lifecycle_worker(tsenv.client, facts=facts, sink=sink) as tq:
        settings = LifecycleSettings(dr_backlog_max=3, dr_flush_ms=0, dr_batch=1)
        d = await _driver(tsenv, tq, signers, factory, facts, settings=settings)
        first = await read_state(tsenv.client, factory.project_id)
        for name in ("Boot_ConfigOk", "Boot_Licensed"):
            await d.step(name)
        third = factory.body(
            "Ingestion_SourcesResolved",
            (await read_state(tsenv.client, factory.project_id)).hash,
            await d.inputs_for("Ingestion_SourcesResolved"),
        )
        assert isinstance(await propose(tsenv.client, factory.project_id, ProposalRequest(body=third)), Accepted)
        assert (await read_health(tsenv.client, factory.project_id)).undelivered == 3
        state = await read_state(tsenv.client, factory.project_id)
        body = factory.body("Ingestion_BytesOk", state.hash, await d.inputs_for("Ingestion_BytesOk"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
        assert turned_away(refused.value) and "sink is behind (3 records" in str(refused.value.cause)
        after = await read_state(tsenv.client, factory.project_id)
        assert (after.index, after.hash) == (state.index, state.hash), "a turned-away proposal changed the state"
        # Duplicates and rejections are still answered.
        again = await propose(tsenv.client, factory.project_id, ProposalRequest(body=third))
        assert isinstance(again, Accepted) and again.duplicate and again.index == 3
        old = factory.body("Ingestion_BytesOk", first.hash, await d.inputs_for("Ingestion_BytesOk"))
        stale = await propose(tsenv.client, factory.project_id, ProposalRequest(body=old))
        assert isinstance(stale, Rejected) and stale.error == "stale_state_hash"

        sink.down = False
        await tsenv.sleep(timedelta(minutes=2))  # the pump's back-off after failed deliveries

        async def drained() -> bool:
            return (await read_health(tsenv.client, factory.project_id)).undelivered == 0

        await _wait_for(drained, timeout_s=30)
        assert [r["index"] for r in jsonl.read(factory.project_id, 0, 100)] == [1, 2, 3]
        answer = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
        assert isinstance(answer, Accepted) and answer.index == 4
        # Leave the worker only once its delivery is acknowledged by the workflow: stopping the worker between
        # the delivery activity's completion and the workflow task that records it once hung its shutdown.
        await _wait_for(drained, timeout_s=30)


def _max_evidence(n: int, transition: str) -> list[str]:
    """64 references of 512 characters: the largest evidence a proposal may carry (~33 KB per record)."""
    return [f"ucxl://evidence/{n}/{k}/{transition}/".ljust(512, "e") for k in range(64)]


async def test_lifecycle_snapshots_with_large_decision_records_stay_under_the_payload_limit(
    tsenv: WorkflowEnvironment,
    task_queue: str,
    signers: Signers,
    factory: ProposalFactory,
    facts: FakeFacts,
    tmp_path: Path,
) -> None:
    """Records bounded in bytes: ~75 records of 33 KB would make a 2.5 MB snapshot and a stuck project."""
    settings = LifecycleSettings(snapshot_every=90)
    d = await _driver(tsenv, task_queue, signers, factory, facts, settings=settings)
    await d.lifecycle()
    n = 0
    while n < 100:  # past the snapshot at 90 transitions
        for t in LOOP:
            await asyncio.wait_for(d.step(t, evidence=_max_evidence(n, t)), 30)
            n += 1
    health = await read_health(tsenv.client, factory.project_id)
    assert health.runs >= 1 and health.index == 13 + n
    page = await read_decisions(tsenv.client, factory.project_id, 0, 1000)
    assert page.first_retained_index is not None and page.first_retained_index > health.index - 8
    assert sum(len(str(r)) for r in page.records) < 200 * 1024
    sink = tmp_path / "decisions" / f"{factory.project_id}.jsonl"

    async def delivered() -> bool:
        await tsenv.sleep(timedelta(seconds=2))
        return sink.exists() and len(sink.read_text().splitlines()) == health.index

    await _wait_for(delivered, timeout_s=60)
    records = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(1, health.index + 1))
    assert verify_chain(records) is None


async def test_lifecycle_turns_transitions_away_when_undelivered_records_reach_the_byte_limit(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    from swoosh.activities.records_jsonl import JsonlSink
    from swoosh.workflows.lifecycle.client import turned_away
    from swoosh.workflows.testing.environment import lifecycle_worker

    sink = _DownSink(JsonlSink(tmp_path / "down"))
    async with lifecycle_worker(tsenv.client, facts=facts, sink=sink) as tq:
        d = await _driver(tsenv, tq, signers, factory, facts, settings=LifecycleSettings(dr_flush_ms=0, dr_batch=1))
        await d.lifecycle()
        accepted = 0
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            for n in range(40):
                for t in LOOP:
                    await asyncio.wait_for(d.step(t, evidence=_max_evidence(n, t)), 30)
                    accepted += 1
        assert turned_away(refused.value) and "KiB not yet delivered" in str(refused.value.cause)
        health = await read_health(tsenv.client, factory.project_id)
        # 256 KiB of ~33 KB records, far below the 512-record limit; nothing was lost.
        assert 6 <= accepted <= 10 and health.index == 13 + accepted
        assert health.undelivered == health.index
