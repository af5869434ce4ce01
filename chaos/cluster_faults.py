"""The cluster's fault timeline: the profiles, each fault fired on its host, and what each did to the callers.

A `ClusterProfile` names its faults on a fixed timeline (`PROFILES`); `Injector.fire` partitions a
worker host, kills and restarts a worker, restarts an API replica or cuts PostgreSQL's address, and
undoes it after the fault's duration; `fault_effects` measures, from the callers' accepted answers,
how long each fault stalled the projects and how soon they moved again.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from dataclasses import dataclass
from typing import Literal

import psycopg

from swoosh.chaos.callers import Observations
from swoosh.chaos.cluster_checks import Log, PostgresReader
from swoosh.chaos.faults import FaultRecord
from swoosh.chaos.netns import Network
from swoosh.chaos.schedule import Profile
from swoosh.chaos.stack import Stack
from swoosh.workflows.lifecycle.client import read_head

FaultKind = Literal["partition", "worker_kill", "api_restart", "postgres_cut"]


@dataclass(frozen=True)
class ClusterFault:
    at_s: float
    kind: FaultKind
    target: str  # the host (partition), worker/API index, or "db"
    duration_s: float = 0.0

    def describe(self) -> str:
        lasting = f" for {self.duration_s:.0f}s" if self.duration_s else ""
        return f"t={self.at_s:>5.1f}s {self.kind} {self.target}{lasting}"


@dataclass(frozen=True)
class ClusterProfile:
    name: str
    duration_s: float
    projects: int
    faults: tuple[ClusterFault, ...]
    tempo_bpm: int = 80
    beats_per_bar: int = 12
    drain_timeout_s: float = 150.0
    snapshot_every: int = 40
    dr_retain: int = 16  # small, so pages come from PostgreSQL through the API

    def chaos_profile(self) -> Profile:
        """What the callers read of a chaos profile (proposal fault rates, BACKBEAT tempo)."""
        return Profile(
            name=f"cluster-{self.name}",
            duration_s=self.duration_s,
            projects=self.projects,
            workers=2,
            tempo_bpm=self.tempo_bpm,
            beats_per_bar=self.beats_per_bar,
        )


PROFILES: dict[str, ClusterProfile] = {
    # `make cluster`: every fault at least once, a second partition of the other worker host.
    "full": ClusterProfile(
        name="full",
        duration_s=200.0,
        projects=8,
        faults=(
            ClusterFault(25.0, "partition", "worker-0", 25.0),
            ClusterFault(65.0, "worker_kill", "1", 10.0),
            ClusterFault(90.0, "api_restart", "0"),
            ClusterFault(110.0, "postgres_cut", "db", 25.0),
            ClusterFault(150.0, "partition", "worker-1", 15.0),
        ),
    ),
    # The short version in `make test`: every fault once, within about a minute.
    "short": ClusterProfile(
        name="short",
        duration_s=50.0,
        projects=3,
        faults=(
            ClusterFault(6.0, "postgres_cut", "db", 6.0),
            ClusterFault(14.0, "partition", "worker-0", 8.0),
            ClusterFault(24.0, "worker_kill", "1", 4.0),
            ClusterFault(31.0, "api_restart", "0"),
        ),
        drain_timeout_s=120.0,
    ),
}


@dataclass
class FaultEffect:
    """What one fault did, measured from the callers' accepted answers and the store."""

    fault: str
    started_s: float
    ended_s: float
    worst_stall_s: float  # longest time any project went without a fresh accepted transition around the fault
    median_stall_s: float
    first_accept_after_s: float | None  # from the end of the fault to the first accepted transition
    backlog_cleared_s: float | None = None  # postgres_cut: from restore until every record then due is stored


class Injector:
    def __init__(self, stack: Stack, net: Network, pg: PostgresReader, projects: list[str], t0: float, log: Log):
        self.stack, self.net, self.pg, self.projects, self.t0, self.log = stack, net, pg, projects, t0, log
        self.records: list[FaultRecord] = []
        self.cleared: dict[int, float] = {}  # fault record position -> backlog cleared after (s)
        self.partitions = 0

    async def fire(self, f: ClusterFault) -> None:
        rec = FaultRecord(kind=f.kind, scheduled_s=f.at_s, started=time.monotonic(), projects=list(self.projects))
        self.records.append(rec)
        pos = len(self.records) - 1
        try:
            if f.kind == "partition":
                self.net.partition(f.target)
                self.partitions += 1
                await asyncio.sleep(f.duration_s)
                self.net.heal(f.target)
            elif f.kind == "worker_kill":
                await self.stack.kill_worker(int(f.target))
                await asyncio.sleep(f.duration_s)
                await self.stack.start_worker(int(f.target))
            elif f.kind == "api_restart":
                await self.stack.restart_api(int(f.target))
            elif f.kind == "postgres_cut":
                self.net.cut_address(f.target, "postgres")
                await asyncio.sleep(f.duration_s)
                self.net.restore_address(f.target, "postgres")
            rec.detail = "done"
        except Exception as err:
            rec.ok, rec.detail = False, f"{type(err).__name__}: {err}"
        rec.ended = time.monotonic()
        self.log(
            f"cluster: {'ok  ' if rec.ok else 'FAIL'} {f.describe()} ({rec.ended - rec.started:.1f}s) {rec.detail}"
        )
        if f.kind == "postgres_cut" and rec.ok:
            self.cleared[pos] = await self._backlog_cleared(rec.ended)

    async def _backlog_cleared(self, since: float, timeout_s: float = 120.0) -> float:
        """Seconds from `since` until PostgreSQL holds every record the projects had when it came back."""
        client = await self.stack.client()
        due = {}
        for p in self.projects:
            try:
                due[p] = (await read_head(client, p)).index
            except Exception:
                continue
        while time.monotonic() - since < timeout_s:
            try:
                heads = await self.pg.heads()
                if all(heads.get(p, 0) >= i for p, i in due.items()):
                    return time.monotonic() - since
            except psycopg.Error:
                pass
            await asyncio.sleep(0.5)
        return float("nan")


def fault_effects(inj: Injector, obs: Observations, grace_s: float = 20.0) -> list[FaultEffect]:
    """Per fault: the longest gap between a project's accepted transitions that spans the fault's start
    or ends within `grace_s` after it ended (cut at the next fault's start, so faults are not mixed)."""
    out = []
    starts = sorted(r.started for r in inj.records)
    for pos, rec in enumerate(inj.records):
        stalls, firsts = [], []
        horizon = min([rec.ended + grace_s, *(t for t in starts if t > rec.started)])
        for p in rec.projects:
            times = sorted(obs.accepted_at.get(p, []))
            before = [t for t in times if t < rec.started]
            points = ([before[-1]] if before else []) + [t for t in times if rec.started <= t <= horizon]
            gaps = [b - a for a, b in itertools.pairwise(points) if b > rec.started]
            stalls.append(max(gaps, default=0.0))
            after = [t for t in times if t >= rec.ended]
            if after:
                firsts.append(after[0] - rec.ended)
        out.append(
            FaultEffect(
                fault=f"{rec.kind}@{rec.scheduled_s:.0f}s",
                started_s=rec.started - inj.t0,
                ended_s=rec.ended - inj.t0,
                worst_stall_s=max(stalls, default=0.0),
                median_stall_s=statistics.median(stalls) if stalls else 0.0,
                first_accept_after_s=min(firsts) if firsts else None,
                backlog_cleared_s=inj.cleared.get(pos),
            )
        )
    return out
