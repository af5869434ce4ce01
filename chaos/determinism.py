"""`swoosh determinism` (`make determinism`): prove replicas agree after a randomized 10k-transition run.

1. A real stack (Temporal dev server on SQLite, three workers *without sticky cache* so consecutive
   tasks replay on different workers, the HTTP API) is driven through the HTTP API by seeded walkers
   (`swoosh.workflows.testing.walk`) that mix valid transitions with stale hashes, bad signatures,
   HLC regressions, duplicates, unknown and invalid transitions. Each walker mirrors its project with
   the pure engine and checks every answer's `state_post_hash` live.
2. Afterwards every project's runs are fetched and checked by `--replicas` independent `Replayer`
   passes (`swoosh.workflows.replay.replicas`) and by the pure fold (`swoosh.workflows.replay.fold`).
   At every snapshot boundary and at the end, every replica, the fold, the live answers and the live
   head must be identical.

Last line: `determinism transitions=<n> replicas=<k> identical=<true|false> seed=<s>`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from swoosh.activities.backbeat import Schedule
from swoosh.activities.config import BackbeatSettings
from swoosh.api.client import ProposalFactory, load_signers
from swoosh.chaos.process import cancel_on_signal
from swoosh.chaos.stack import Stack
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.replay.fold import fold
from swoosh.workflows.replay.history import fetch_project_runs, run_facts
from swoosh.workflows.replay.replicas import replica_pass
from swoosh.workflows.testing.walk import Walker

TEMPO_BPM, BEATS_PER_BAR = 240, 8  # 2 s bars: each window class open for 0.5 s of every bar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transitions", type=int, default=10_000, help="accepted transitions to reach")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--projects", type=int, default=24)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--snapshot-every", type=int, default=100)
    parser.add_argument("--root", type=Path, default=None, help="working folder (default .swoosh/determinism/<seed>)")


@dataclass
class ProjectRun:
    project_id: str
    walker: Walker
    answers: dict[int, str] = field(default_factory=dict)  # index -> state_post_hash the caller was told
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def drive(http: httpx.AsyncClient, run: ProjectRun, budget: dict[str, int], deadline: float) -> None:
    """Propose until the shared budget of accepted transitions is spent."""
    while budget["left"] > 0 and time.monotonic() < deadline:
        prop = run.walker.next(now_ms())
        if prop is None:
            await asyncio.sleep(0.05)  # nothing valid until a window opens
            continue
        for attempt in range(20):
            try:
                r = await http.post(f"/v1/projects/{run.project_id}/transition", json=prop.body)
            except httpx.HTTPError:
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if r.status_code in (429, 503):
                await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
                continue
            break
        else:
            run.problems.append(f"{prop.transition}: no answer after 20 attempts")
            continue
        answer = r.json()
        got = (
            ("duplicate" if answer.get("duplicate") else "accepted") if answer.get("accepted") else answer.get("error")
        )
        run.outcomes[f"{prop.kind}->{got}"] += 1
        if answer.get("accepted"):
            index = int(answer["index"])
            if index not in run.answers:  # a duplicate is new to us when the first answer was lost
                run.answers[index] = str(answer["state_post_hash"])
                budget["left"] -= 1
            problem = run.walker.accepted(prop, answer, now_ms())
            if problem:
                run.problems.append(problem)
        elif got != prop.expect and not (got == "guard_failed" and answer.get("failing_guard") == "window"):
            # A window closing between choice and decision is expected; anything else is not.
            run.problems.append(
                f"{prop.kind} {prop.transition}: expected {prop.expect}, got {got}: {answer.get('reason')}"
            )
            if got == "stale_state_hash":
                state = (await http.get(f"/v1/projects/{run.project_id}/state")).json()
                run.walker.resync(state["projection"])


async def _read_head(http: httpx.AsyncClient, project_id: str) -> str:
    """The live head, resending on 429/503 (a worker may still be catching up after the run)."""
    for _ in range(60):
        r = await http.get(f"/v1/projects/{project_id}/state")
        if r.status_code == 200:
            return str(r.json()["hash"])
        await asyncio.sleep(min(5.0, float(r.headers.get("Retry-After", "1"))) if r.status_code in (429, 503) else 1.0)
    raise RuntimeError(f"{project_id}: no state after 60 attempts (last {r.status_code}: {r.text[:200]})")


async def verify(stack: Stack, runs: list[ProjectRun], replicas: int) -> tuple[int, bool, list[str], dict[str, Any]]:
    client = await stack.client()
    problems: list[str] = []
    folded = 0
    passes = []
    histories_by_project = {}
    async with stack.http() as http:
        heads = {r.project_id: await _read_head(http, r.project_id) for r in runs}
    for r in runs:
        histories_by_project[r.project_id] = await fetch_project_runs(client, workflow_id(r.project_id))
    all_histories = [h for hs in histories_by_project.values() for h in hs]
    t0 = time.monotonic()
    for _ in range(replicas):
        passes.append(await replica_pass(all_histories, client.data_converter))
    replay_s = time.monotonic() - t0
    t0 = time.monotonic()
    boundaries = 0
    for r in runs:
        histories = histories_by_project[r.project_id]
        facts = [run_facts(h) for h in histories]
        result = fold(facts, heads[r.project_id])
        folded += result.transitions
        if not result.ok:
            problems.append(f"{r.project_id}: fold: {result.problems or 'final ' + str(result.final_hash)}")
        if r.walker.mirror.head_hash != heads[r.project_id]:
            problems.append(f"{r.project_id}: caller's mirror {r.walker.mirror.head_hash} ≠ live head")
        for h in histories:
            runs_k = [p.runs.get(h.run_id) for p in passes]
            for k, rr in enumerate(runs_k):
                if rr is None or rr.failure:
                    problems.append(
                        f"{r.project_id} run {h.run_id}: replica {k} failed: {rr.failure if rr else 'missing'}"
                    )
            snaps = {rr.snapshot for rr in runs_k if rr}
            finals = {rr.final for rr in runs_k if rr}
            if len(snaps) > 1 or len(finals) > 1:
                problems.append(f"{r.project_id} run {h.run_id}: replicas disagree: {snaps} {finals}")
            for rr in runs_k[:1]:
                if rr and rr.snapshot:
                    boundaries += 1
                    index, hsh = rr.snapshot
                    live = r.answers.get(index)
                    if live is not None and live != hsh:
                        problems.append(f"{r.project_id}: snapshot at {index}: replicas {hsh} ≠ live answer {live}")
                for index, hsh in rr.hashes.items() if rr else []:
                    if r.answers.get(index, hsh) != hsh:
                        problems.append(f"{r.project_id}: index {index}: replica {hsh} ≠ live {r.answers[index]}")
        last = passes[0].runs.get(histories[-1].run_id) if histories else None
        if last is None or last.final is None or last.final[1] != heads[r.project_id]:
            problems.append(
                f"{r.project_id}: replayed head {last.final if last else None} ≠ live {heads[r.project_id]}"
            )
    fold_s = time.monotonic() - t0
    stats = {"replay_seconds": round(replay_s, 2), "fold_seconds": round(fold_s, 2), "snapshot_boundaries": boundaries,
             "runs": len(all_histories), "events": sum(len(h.events) for h in all_histories)}  # fmt: skip
    return folded, not problems, problems, stats


async def run(args: argparse.Namespace) -> int:
    root = args.root or Path(".swoosh") / "determinism" / str(args.seed)
    root.mkdir(parents=True, exist_ok=True)
    extra = {
        "SWOOSH_ENGINE_SNAPSHOT_EVERY": str(args.snapshot_every),
        "SWOOSH_BACKBEAT_TEMPO_BPM": str(TEMPO_BPM),
        "SWOOSH_BACKBEAT_BEATS_PER_BAR": str(BEATS_PER_BAR),
    }
    schedule = Schedule.from_settings(BackbeatSettings(tempo_bpm=TEMPO_BPM, beats_per_bar=BEATS_PER_BAR))
    rng = random.Random(args.seed)
    started = time.monotonic()
    encryption = EncryptionSettings.from_environ(os.environ)  # SWOOSH_ENCRYPTION_KEYS[_FILE]: encrypted run
    async with Stack(root, workers=args.workers, no_sticky=True, extra_env=extra, encryption=encryption) as stack:
        signers = load_signers(stack.keys_dir)
        runs = []
        async with stack.http(timeout_s=60) as http:
            for i in range(args.projects):
                pid = f"det-{args.seed}-{i}"
                (await http.put(f"/v1/projects/{pid}")).raise_for_status()
                factory = ProposalFactory(signers, pid, prefix=f"det{args.seed}")
                runs.append(ProjectRun(pid, Walker(factory, random.Random(rng.random()), schedule)))
            print(f"determinism: {args.projects} projects, {args.workers} workers without sticky cache, "
                  f"snapshot every {args.snapshot_every}; root {root}", flush=True)  # fmt: skip
            budget = {"left": args.transitions}
            deadline = time.monotonic() + 3600
            progress = asyncio.create_task(_progress(budget, args.transitions))
            await asyncio.gather(*(drive(http, r, budget, deadline) for r in runs))
            progress.cancel()
        drive_s = time.monotonic() - started
        accepted = sum(len(r.answers) for r in runs)
        outcomes: Counter[str] = Counter()
        for r in runs:
            outcomes.update(r.outcomes)
        live_problems = [p for r in runs for p in r.problems]
        folded, identical, problems, stats = await verify(stack, runs, args.replicas)
    problems = live_problems + problems
    summary = {
        "seed": args.seed, "accepted": accepted, "proposals": sum(outcomes.values()),
        "drive_seconds": round(drive_s, 1),
        "transitions_per_second": round(accepted / drive_s, 1), "folded": folded,
        "outcomes": dict(sorted(outcomes.items())),
        **stats, "replay_transitions_per_second": round(folded * args.replicas / max(stats["replay_seconds"], 1e-9), 1),
        "fold_transitions_per_second": round(folded / max(stats["fold_seconds"], 1e-9), 1), "problems": problems[:50],
    }  # fmt: skip
    (root / "determinism.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    ok = identical and not problems
    print(f"determinism transitions={folded} replicas={args.replicas} identical={str(ok).lower()} seed={args.seed}")
    return 0 if ok else 1


async def _progress(budget: dict[str, int], total: int) -> None:
    while True:
        await asyncio.sleep(15)
        print(f"determinism: {total - budget['left']}/{total} accepted", file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    return int(asyncio.run(cancel_on_signal(run(args))))
