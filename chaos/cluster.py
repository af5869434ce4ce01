"""`swoosh cluster`: SWOOSH on separate hosts (network namespaces), with network and process faults.

Hosts: `db` (Temporal dev server, and PostgreSQL on an address of its own), `worker-0`, `worker-1`,
`api-0`, `api-1`; the callers run on the harness's own host and send each request to the next API
replica. The chaos harness does the rest: `Stack` places the processes on the hosts, `Caller`s drive
the projects, `collect` + `check_project` check every invariant afterwards (decision records read
from PostgreSQL). Faults on a fixed timeline: a worker host partitioned (its link down) and healed, a
worker killed and restarted, an API replica restarted, PostgreSQL's address cut and restored.

Checks after the drain: every accepted transition's record exactly once in PostgreSQL with a
verified chain, the same pages from both API replicas (and equal to PostgreSQL), every history
replays and folds to the live hash, no project stuck. The last line is
`cluster hosts=<n> workers=<w> apis=<a> transitions=<t> records=<r> lost=<l> duplicated=<d>
partitions=<p> identical=<bool>`; exit status 0 only when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg

from swoosh.activities.backbeat import Schedule
from swoosh.activities.records_postgres import TABLE
from swoosh.api.client import load_signers
from swoosh.chaos.callers import Caller, Observations, Replicas, Shared
from swoosh.chaos.evidence import collect
from swoosh.chaos.faults import FaultRecord
from swoosh.chaos.invariants import ProjectVerdict, check_project
from swoosh.chaos.netns import NetnsError, Network, available
from swoosh.chaos.process import cancel_on_signal
from swoosh.chaos.schedule import Profile
from swoosh.chaos.stack import Host, Stack, StackError
from swoosh.workflows.lifecycle.client import read_head, read_health

Log = Callable[[str], None]
FaultKind = Literal["partition", "worker_kill", "api_restart", "postgres_cut"]
HOSTS = ("db", "worker-0", "worker-1", "api-0", "api-1")


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


@dataclass
class ClusterReport:
    profile: str
    hosts: int
    workers: int
    apis: int
    transitions: int = 0
    records: int = 0
    lost: int = 0
    duplicated: int = 0
    partitions: int = 0
    identical: bool = False
    stuck: list[str] = field(default_factory=list)
    violations: dict[str, list[str]] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    drain: dict[str, str] = field(default_factory=dict)
    effects: list[FaultEffect] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    network: str = ""  # the run's namespace prefix (every namespace it made starts with it)

    @property
    def ok(self) -> bool:
        return (
            not self.violations and not self.lost and not self.duplicated and self.identical and not self.stuck
        ) and all(s == "ok" for s in self.drain.values())

    def last_line(self) -> str:
        return (
            f"cluster hosts={self.hosts} workers={self.workers} apis={self.apis} transitions={self.transitions} "
            f"records={self.records} lost={self.lost} duplicated={self.duplicated} partitions={self.partitions} "
            f"identical={'true' if self.identical else 'false'}"
        )

    def lines(self) -> list[str]:
        out = [f"cluster: {len(self.faults)} faults in {self.duration_s:.0f}s, answers {self.answers}"]
        for e in self.effects:
            cleared = f", backlog cleared {e.backlog_cleared_s:.1f}s after" if e.backlog_cleared_s is not None else ""
            after = f"{e.first_accept_after_s:.1f}s" if e.first_accept_after_s is not None else "never"
            out.append(
                f"  {e.fault}: worst stall {e.worst_stall_s:.1f}s (median {e.median_stall_s:.1f}s), "
                f"first accept {after} after it ended{cleared}"
            )
        for name, problems in sorted(self.violations.items()):
            out.append(f"  VIOLATION {name}: {len(problems)}: {problems[:3]}")
        for p, status in sorted(self.drain.items()):
            if status != "ok":
                out.append(f"  not drained: {p}: {status}")
        for p, status in sorted(self.pages.items()):
            if status != "identical":
                out.append(f"  pages differ: {p}: {status}")
        if self.stuck:
            out.append(f"  stuck: {self.stuck}")
        out.append(self.last_line())
        return out


class PostgresReader:
    """The harness's own view of the decision-record table (from the callers' host)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def records(self, project_id: str) -> list[dict[str, Any]]:
        """Every row of the project, in index order (duplicates, were there any, included)."""
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT record FROM {TABLE} WHERE project_id = %s ORDER BY idx", (project_id,))
            return [dict(row[0]) for row in await cur.fetchall()]

    async def heads(self) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT project_id, max(idx) FROM {TABLE} GROUP BY project_id")
            return {str(p): int(i) for p, i in await cur.fetchall()}

    async def count(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT count(*) FROM {TABLE}")
            row = await cur.fetchone()
            return int(row[0]) if row else 0


# ---------------------------------------------------------------------- faults
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


# ---------------------------------------------------------------------- checks
async def _drain(stack: Stack, pg: PostgresReader, projects: list[str], timeout_s: float, log: Log) -> dict[str, str]:
    client = await stack.client()
    status = dict.fromkeys(projects, "pending")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            heads = await pg.heads()
        except psycopg.Error as err:
            heads, note = {}, f"store unreadable: {type(err).__name__}"
        else:
            note = ""
        for p in projects:
            if status[p] == "ok":
                continue
            try:
                health = await read_health(client, p)
                stored = heads.get(p, 0)
                ok = health.undelivered == 0 and stored == health.index and health.delivery_refused is None
                status[p] = (
                    "ok" if ok else f"undelivered={health.undelivered} store={stored} head={health.index} {note}"
                )
            except Exception as err:
                status[p] = f"unreadable: {type(err).__name__}"
        if all(s == "ok" for s in status.values()):
            return status
        await asyncio.sleep(1.0)
    log(f"cluster: drain timed out after {timeout_s:.0f}s: {status}")
    return status


async def _pages(api_url: str, project_id: str, limit: int = 50) -> list[str] | str:
    """Every record of the project through one API replica, paged; the dr_hash list, or why not."""
    out: list[str] = []
    after = 0
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0, trust_env=False) as http:
        while True:
            r = await http.get(f"/v1/projects/{project_id}/decisions", params={"after_index": after, "limit": limit})
            if r.status_code != 200:
                return f"{api_url}: {r.status_code} {r.text[:200]}"
            page = r.json()
            out += [rec["dr_hash"] for rec in page["records"]]
            if page["next_after_index"] >= page["head_index"] or not page["records"]:
                return out
            after = page["next_after_index"]


async def compare_pages(stack: Stack, pg: PostgresReader, projects: list[str]) -> dict[str, str]:
    result = {}
    for p in projects:
        stored = [r["dr_hash"] for r in await pg.records(p)]
        seen = [await _pages(url, p) for url in stack.api_urls]
        if any(isinstance(s, str) for s in seen):
            result[p] = "; ".join(s for s in seen if isinstance(s, str))
        elif all(s == stored for s in seen):
            result[p] = "identical"
        else:
            result[p] = f"replica pages {[len(s) for s in seen]} records vs {len(stored)} stored, or different hashes"
    return result


# ---------------------------------------------------------------------- the run
def cluster_env(profile: ClusterProfile) -> dict[str, str]:
    return {
        "SWOOSH_ENGINE_SNAPSHOT_EVERY": str(profile.snapshot_every),
        "SWOOSH_ENGINE_DR_RETAIN": str(profile.dr_retain),
        "SWOOSH_BACKBEAT_TEMPO_BPM": str(profile.tempo_bpm),
        "SWOOSH_BACKBEAT_BEATS_PER_BAR": str(profile.beats_per_bar),
        "SWOOSH_RECORDS_TIMEOUT_MS": "3000",
    }


def placement(net: Network, root: Path) -> dict[str, Host]:
    def on(name: str, address: str | None = None, bind: str | None = None) -> Host:
        h = net.hosts[name]
        return Host(name, address or h.address, h.launcher, root / "hosts" / name, bind)

    db = net.hosts["db"]
    # The dev server's own services dial its frontend on loopback: on its own host it binds every address.
    out = {"temporal": on("db", bind="0.0.0.0"), "postgres": on("db", db.extra["postgres"])}
    out.update({name: on(name) for name in HOSTS if name != "db"})
    return out


async def run_cluster(profile: ClusterProfile, root: Path, *, seed: int = 1, log: Log = print) -> ClusterReport:
    report = ClusterReport(profile=profile.name, hosts=len(HOSTS), workers=2, apis=2)
    report.faults = [f.describe() for f in profile.faults]
    log(f"cluster: profile {profile.name}: {len(profile.faults)} faults over {profile.duration_s:.0f}s; root {root}")
    with Network.create(list(HOSTS), extra={"db": ["postgres"]}) as net:
        report.network = net.tag
        log(
            f"cluster: hosts on {net.subnet}.0/24: "
            + ", ".join(f"{n}={h.address}" for n, h in net.hosts.items())
            + f", postgres={net.hosts['db'].extra['postgres']}, callers={net.gateway}"
        )
        stack = Stack(
            root / "stack", workers=2, apis=2, hosts=placement(net, root), records="postgres",
            extra_env=cluster_env(profile),
        )  # fmt: skip
        async with stack:
            assert stack.postgres_dsn is not None
            pg = PostgresReader(stack.postgres_dsn)
            log(f"cluster: stack up: APIs {stack.api_urls}, Temporal {stack.temporal_address}")
            signers = load_signers(stack.keys_dir)
            chaos = profile.chaos_profile()
            beats = Schedule(profile.tempo_bpm, profile.beats_per_bar)
            obs, shared = Observations(), Shared()
            projects = [f"cluster-{i}" for i in range(profile.projects)]
            limits = httpx.Limits(max_connections=4 * profile.projects + 8)
            clients = [
                httpx.AsyncClient(base_url=url, timeout=20.0, trust_env=False, limits=limits) for url in stack.api_urls
            ]
            try:
                callers = [
                    Caller(p, Replicas(clients[k % 2 :] + clients[: k % 2]), signers, seed, chaos, beats, obs, shared,
                           f"c{seed}")
                    for k, p in enumerate(projects)
                ]  # fmt: skip
                stop = asyncio.Event()
                t0 = time.monotonic()
                injector = Injector(stack, net, pg, projects, t0, log)
                tasks = [asyncio.create_task(c.run(stop)) for c in callers]
                faults: list[asyncio.Task[None]] = []
                try:
                    for f in profile.faults:
                        delay = t0 + f.at_s - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        faults.append(asyncio.create_task(injector.fire(f)))
                    remaining = t0 + profile.duration_s - time.monotonic()
                    if remaining > 0:
                        await asyncio.sleep(remaining)
                    await asyncio.gather(*faults)
                finally:
                    stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    for t in faults:
                        t.cancel()
                    await asyncio.gather(*faults, return_exceptions=True)
                report.duration_s = time.monotonic() - t0
            finally:
                for c in clients:
                    await c.aclose()
            for name in list(net.partitioned):
                net.heal(name)
            net.restore_address("db", "postgres")
            for i in range(stack.n_workers):
                if not stack.worker_running(i):
                    await stack.start_worker(i)
            await stack.wait_ready()
            report.partitions = injector.partitions
            report.effects = fault_effects(injector, obs)
            last_fault_end = max((r.ended for r in injector.records), default=t0)
            log(f"cluster: callers stopped after {report.duration_s:.0f}s; draining decision records")
            report.drain = await _drain(stack, pg, projects, profile.drain_timeout_s, log)
            client = await stack.client()
            verdicts: list[ProjectVerdict] = []
            for p in projects:
                ev = await collect(
                    client, p, stack.decisions_dir, obs.answers, [], obs.continuous, sink_records=await pg.records(p)
                )
                verdict = check_project(ev)
                verdicts.append(verdict)
                report.transitions += len(ev.history_records)
                if not any(t > last_fault_end for t in obs.accepted_at.get(p, [])):
                    report.stuck.append(p)
            for v in verdicts:
                report.lost += v.lost
                report.duplicated += v.duplicated
                for name, problems in v.violations.items():
                    report.violations.setdefault(name, []).extend(problems)
            report.lost += sum(1 for ps in report.violations.get("decision_records", []) if "has no decision" in ps)
            report.records = await pg.count()
            report.pages = await compare_pages(stack, pg, projects)
            report.identical = bool(report.pages) and all(v == "identical" for v in report.pages.values())
            report.answers = {
                "accepted": sum(obs.accepted.values()),
                "duplicates": obs.duplicates,
                "rejected": dict(obs.rejected),
                "resent_after": dict(obs.http),
            }
    (root / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n", encoding="utf-8")
    return report


# ---------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full", help="full (~5 min) or short (~1.5 min)")
    parser.add_argument("--seed", type=int, default=1, help="the callers' seed (choices and proposal faults)")
    parser.add_argument("--root", type=Path, default=None, help="where hosts' folders, logs and report go")


def main(args: argparse.Namespace) -> int:
    why = available()
    if why:
        print(f"swoosh cluster: {why}", file=sys.stderr)
        return 2
    profile = PROFILES[args.profile]
    root = (args.root or Path(".swoosh") / "cluster" / profile.name).resolve()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    try:
        report = asyncio.run(cancel_on_signal(run_cluster(profile, root, seed=args.seed, log=_log)))
    except (StackError, NetnsError) as err:
        print(f"swoosh cluster: the cluster did not start: {err}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()), flush=True)
    return 0 if report.ok else 1


def _log(line: str) -> None:
    print(line, flush=True)


__all__ = ["PROFILES", "ClusterFault", "ClusterProfile", "ClusterReport", "run_cluster"]
