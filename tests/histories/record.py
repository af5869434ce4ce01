"""Record the committed replay histories: `python -m tests.histories.record`.

Runs a few scenarios on the time-skipping server and writes every run of each project workflow
(following continue-as-new) as `tests/histories/<scenario>-run<k>.json`, the format
`temporal workflow show --output json` writes. Re-record only for an intentional, versioned change
of workflow code; the replay test exists to fail on unintentional ones. Histories recorded by older
code stay committed (they prove that versioned changes still replay them): record new scenarios by
name, `python -m tests.histories.record reverb`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import ensure_project, read_state
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.testing.driver import LOOP, LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping

HERE = Path(__file__).parent
Scenario = Callable[[LifecycleDriver, FakeFacts, Client], Awaitable[None]]


async def lifecycle(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    await d.loop(2)


async def quarantine(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    await d.try_step("Ingestion_SourcesResolved", {"sources": ["-----BEGIN PRIVATE KEY-----"]})
    await d.state()
    await d.step("Policy_Release", {"reason": "false positive, reviewed"})
    await d.step("Ingestion_SourcesResolved")
    await d.step("Control_Pause", {"reason": "maintenance"})
    await d.step("Control_Resume", {"reason": "maintenance over"})


async def snapshots(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    await d.try_step("Execution_PlanLocked", {"plan_hash": "not-a-hash"})
    await d.step("Execution_QuorumLost", {"reason": "council member unreachable"})
    await d.step("Council_Eject", {"member": d.factory.council_members()[0], "reason": "unreachable"})


async def reverb(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """EXECUTION loops under the REVERB snapshot minimum: the first REVERB snapshots, the next does not."""
    await d.lifecycle()
    await d.loop(3)


async def records(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    """Decision records bounded in bytes: large evidence, so each delivery batch holds a single record."""
    await d.lifecycle()
    for t in LOOP:
        await d.step(t, evidence=[f"ucxl://evidence/{t}/{k}/".ljust(100, "e") for k in range(64)])


async def grace(d: LifecycleDriver, facts: FakeFacts, client: Client) -> None:
    await d.lifecycle()
    facts.license_status = "throttled"
    await d.step("License_Throttled", {"reason": "KACHING throttling"})
    env_sleep = client._swoosh_sleep
    await env_sleep(timedelta(minutes=20))
    for _ in range(50):
        state = await read_state(client, d.factory.project_id)
        if state.projection["control"]["license"]["phase"] == "DEGRADED_EXPIRED":
            break
        await asyncio.sleep(0.1)
    facts.license_status = "valid"
    await d.state()
    await d.step("License_Restored", {})


SCENARIOS: dict[str, tuple[Scenario, LifecycleSettings]] = {
    "lifecycle": (lifecycle, LifecycleSettings()),
    "quarantine": (quarantine, LifecycleSettings()),
    "snapshots": (snapshots, LifecycleSettings(snapshot_every=4)),
    "grace": (grace, LifecycleSettings()),
    "reverb": (reverb, LifecycleSettings(reverb_snapshot_min=6)),
    "records": (records, LifecycleSettings(dr_batch_bytes=4096, dr_retain_bytes=16384)),
}


async def history_chain(client: Client, wf_id: str, first_run_id: str) -> list[dict[str, object]]:
    """Every run's history, first to last, following ContinuedAsNew links."""
    out = []
    run_id: str | None = first_run_id
    while run_id:
        history = await client.get_workflow_handle(wf_id, run_id=run_id).fetch_history()
        out.append(history.to_json_dict())
        last = history.events[-1]
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        else:
            run_id = None
    return out


async def record(out_dir: Path = HERE, only: list[str] | None = None) -> dict[str, dict[str, int]]:
    env = await start_time_skipping()
    stats: dict[str, dict[str, int]] = {}
    try:
        client = env.client
        object.__setattr__(client, "_swoosh_sleep", env.sleep)
        for name, (scenario, settings) in SCENARIOS.items():
            if only and name not in only:
                continue
            signers = Signers.generate()
            factory = ProposalFactory(signers, f"history-{name}")
            facts = FakeFacts()
            with tempfile.TemporaryDirectory() as sink:
                async with lifecycle_worker(client, facts=facts, sink_dir=Path(sink)) as tq:
                    handle = await ensure_project(
                        client, factory.project_id, signers.keyring(), tq, EngineConfig(), settings
                    )
                    driver = LifecycleDriver.for_client(client, factory, open_window=facts.open_window)
                    await scenario(driver, facts, client)
                    await env.sleep(timedelta(seconds=5))  # let decision records flush
                    await asyncio.sleep(0.5)
                    runs = await history_chain(
                        client, workflow_id(factory.project_id), handle.first_execution_run_id or ""
                    )
                    await handle.terminate("history recorded")
            for old in out_dir.glob(f"{name}-run*.json"):
                old.unlink()
            events = 0
            for k, run in enumerate(runs):
                (out_dir / f"{name}-run{k}.json").write_text(json.dumps(run, indent=1) + "\n")
                events += len(run["events"])  # type: ignore[arg-type]
            stats[name] = {"runs": len(runs), "events": events, "accepted": len(driver.answers)}
    finally:
        await env.shutdown()
    return stats


def main() -> int:
    """`python -m tests.histories.record [SCENARIO ...]`: all scenarios, or only the named ones."""
    unknown = set(sys.argv[1:]) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenario(s) {sorted(unknown)}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    stats = asyncio.run(record(only=sys.argv[1:] or None))
    for name, s in stats.items():
        print(
            f"{name}: {s['runs']} run(s), {s['events']} events, {s['accepted']} accepted by the caller", file=sys.stderr
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
