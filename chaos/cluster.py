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

This module is the run and its report; `chaos.netns` makes the hosts, `chaos.cluster_faults` holds
the fault timeline and fires it, `chaos.cluster_checks` reads the record store and the API pages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from swoosh.activities.backbeat import Schedule
from swoosh.api.client import load_signers
from swoosh.chaos.callers import Caller, Observations, Replicas, Shared
from swoosh.chaos.cluster_checks import Log, PostgresReader, compare_pages, drain
from swoosh.chaos.cluster_faults import PROFILES, ClusterFault, ClusterProfile, FaultEffect, Injector, fault_effects
from swoosh.chaos.evidence import collect
from swoosh.chaos.invariants import ProjectVerdict, check_project
from swoosh.chaos.netns import NetnsError, Network, available
from swoosh.chaos.process import cancel_on_signal
from swoosh.chaos.stack import Host, Stack, StackError

HOSTS = ("db", "worker-0", "worker-1", "api-0", "api-1")


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
            report.drain = await drain(stack, pg, projects, profile.drain_timeout_s, log)
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
