"""The scenario runner: a stack, callers on every project, the seeded fault schedule, then the checker.

1. start a `Stack` (dev server, workers, API, simulator) under `root`, configured for chaos
   (short fact refreshes, BACKBEAT bars long enough for a loop, early snapshots);
2. run one `Caller` per project while the `Injector` fires the schedule's events on time;
3. stop the callers, undo the ecosystem faults, make sure every worker runs, wait until every
   project's decision records are delivered (the drain);
4. gather each project's evidence and check every invariant; build the report.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from swoosh.activities.backbeat import Schedule
from swoosh.api.client import load_signers
from swoosh.chaos.callers import Caller, Observations, Shared
from swoosh.chaos.evidence import collect
from swoosh.chaos.faults import Injector
from swoosh.chaos.invariants import check_project
from swoosh.chaos.report import ChaosReport, RecoveryMetrics, recovery_times
from swoosh.chaos.schedule import Profile, build_schedule, schedule_digest
from swoosh.chaos.stack import Stack
from swoosh.workflows.lifecycle.client import read_health, read_state
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.replay.audit import read_records

Log = Callable[[str], None]


def chaos_env(profile: Profile) -> dict[str, str]:
    """SWOOSH_* settings for a chaos stack: facts refreshed often enough for faults to show within seconds."""
    return {
        "SWOOSH_ENGINE_SNAPSHOT_EVERY": str(profile.snapshot_every),
        "SWOOSH_KACHING_TIMEOUT_MS": "1000",
        "SWOOSH_KACHING_REFRESH_MS": "2000",
        "SWOOSH_KACHING_JITTER_MS": "200",
        "SWOOSH_KACHING_RETRY_MS": "500",
        "SWOOSH_KACHING_MAX_AGE_MS": "8000",
        "SWOOSH_MCP_REFRESH_MS": "2000",
        "SWOOSH_MCP_JITTER_MS": "200",
        "SWOOSH_MCP_RETRY_MS": "500",
        "SWOOSH_MCP_MAX_AGE_MS": "8000",
        "SWOOSH_MCP_STALE_GRACE_MS": "2000",
        # provider_hang holds BACKBEAT for 15 s a request: with a client timeout above that and guard
        # attempts of 2.5 s, the guard activity fails after its retries (an outage), not the guard.
        "SWOOSH_ENGINE_GUARD_TIMEOUT_MS": "2500",
        "SWOOSH_BACKBEAT_TIMEOUT_MS": "20000",
    }


async def _drain(stack: Stack, projects: list[str], timeout_s: float, log: Log) -> dict[str, str]:
    """Wait until every project's records are all in the sink (or the timeout); per project: 'ok' or why not."""
    client = await stack.client()
    deadline = time.monotonic() + timeout_s
    status: dict[str, str] = dict.fromkeys(projects, "pending")
    while time.monotonic() < deadline:
        for p in projects:
            if status[p] == "ok":
                continue
            try:
                health = await read_health(client, p)
                path = stack.decisions_dir / f"{p}.jsonl"
                records = read_records(path) if path.exists() else []
                last = int(records[-1]["index"]) if records else 0
                if health.undelivered == 0 and last == health.index:
                    status[p] = "ok"
                else:
                    status[p] = f"undelivered={health.undelivered} sink={last} head={health.index}"
            except Exception as err:  # the server may still be recovering from the last fault
                status[p] = f"unreadable: {type(err).__name__}"
        if all(s == "ok" for s in status.values()):
            return status
        await asyncio.sleep(1.0)
    log(f"drain timed out after {timeout_s:.0f}s: {status}")
    return status


async def run_chaos(
    seed: int,
    profile: Profile,
    root: Path,
    *,
    log: Log = print,
    metrics: RecoveryMetrics | None = None,
) -> ChaosReport:
    schedule = build_schedule(seed, profile)
    digest = schedule_digest(schedule)
    log(
        f"chaos: seed {seed}, profile {profile.name}: {len(schedule)} scheduled faults (schedule {digest}); root {root}"
    )
    metrics = metrics or RecoveryMetrics()
    stack = Stack(
        root,
        workers=profile.workers,
        simulator=True,
        extra_env=chaos_env(profile),
        sim_tempo_bpm=profile.tempo_bpm,
        sim_beats_per_bar=profile.beats_per_bar,
        # Encrypted end to end when the operator's environment has keys (SWOOSH_ENCRYPTION_KEYS[_FILE]).
        encryption=EncryptionSettings.from_environ(os.environ),
    )
    async with stack:
        log(f"chaos: stack up: API {stack.api_url}, Temporal {stack.temporal_address}, logs {stack.logs_dir}")
        client = await stack.client()
        signers = load_signers(stack.keys_dir)
        beats = Schedule(profile.tempo_bpm, profile.beats_per_bar)
        obs, shared = Observations(), Shared()
        projects = [f"chaos-{i}" for i in range(profile.projects)]
        limits = httpx.Limits(max_connections=4 * profile.projects + 8)
        async with (
            httpx.AsyncClient(base_url=stack.api_url, timeout=20.0, trust_env=False, limits=limits) as http,
            httpx.AsyncClient(base_url=str(stack.sim_url), timeout=10.0, trust_env=False) as sim,
        ):
            callers = [Caller(p, http, signers, seed, profile, beats, obs, shared, f"s{seed}") for p in projects]
            stop = asyncio.Event()
            t0 = time.monotonic()
            injector = Injector(stack, client, callers, shared, sim, t0)
            tasks = [asyncio.create_task(c.run(stop)) for c in callers]
            try:
                for ev in schedule:
                    delay = t0 + ev.at_s - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    injector.background(_fire_and_log(injector, ev, log))
                remaining = t0 + profile.duration_s - time.monotonic()
                if remaining > 0:
                    await asyncio.sleep(remaining)
            finally:
                stop.set()
                await asyncio.gather(*tasks, return_exceptions=True)
                await injector.settle()
                await injector.clear_ecosystem()
            duration = time.monotonic() - t0
            for i in range(stack.n_workers):
                if not stack.worker_running(i):
                    await stack.start_worker(i)
            await stack.wait_ready()
            log(f"chaos: callers stopped after {duration:.0f}s; draining decision records")
            drain = await _drain(stack, projects, profile.drain_timeout_s, log)
            verdicts = []
            finals: dict[str, dict[str, Any]] = {}
            transitions = 0
            for p in projects:
                ev_ = await collect(client, p, stack.decisions_dir, obs.answers, injector.resets, obs.continuous)
                verdicts.append(check_project(ev_))
                transitions += len(ev_.steps)
                view = await read_state(client, p)
                health = await read_health(client, p)
                doc = view.projection
                finals[p] = {
                    "index": view.index,
                    "top": doc["control"]["top"],
                    "cycles": doc["execution"]["cycle"],
                    "runs": health.runs,
                }
    recovery = recovery_times(injector.records, obs.accepted_at)
    metrics.observe_all(recovery)
    report = ChaosReport(
        seed=seed,
        profile=profile.name,
        schedule_digest=digest,
        scheduled=len(schedule),
        duration_s=duration,
        faults=injector.records,
        resets=injector.resets,
        obs=obs,
        verdicts=verdicts,
        recovery=recovery,
        transitions=transitions,
        finals=finals,
        drain=drain,
    )
    (root / "report.json").write_text(report.dumps() + "\n", encoding="utf-8")
    (root / "metrics.prom").write_bytes(metrics.exposition())
    return report


async def _fire_and_log(injector: Injector, ev: Any, log: Log) -> None:
    rec = await injector.fire(ev)
    status = "ok  " if rec.ok else "FAIL"
    log(f"chaos: {status} {ev.describe()}: {rec.detail}")


__all__ = ["chaos_env", "run_chaos"]
