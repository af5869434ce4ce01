"""Scale benchmark: `make bench-scale` (never part of `make test`).

10,000 projects (`--projects`) against ONE worker process, one API process and the Temporal dev
server (SQLite file), all on this machine (the chaos harness's `Stack`). Each project is created
(`PUT /v1/projects/{id}`) and driven through `--steps` transitions over HTTP (default 3: BOOT,
licence with its guard, the first ingestion step with the policy guard; records are delivered), by
`--concurrency` callers working through the projects. First, the single-project reference: the same transitions on
projects driven one at a time.

Printed: creation rate, transitions/s, p50/p99 latency of a transition against the single-project
reference, failed transitions, the worker's RSS (and its peak), RSS per cached project, the sticky
cache's size and forced evictions (the SDK's own metrics), and the dev server's RSS. The last line:
`scale projects=<n> tps=<x> p50_ms=<x> p99_ms=<x> worker_rss_mb=<x>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from swoosh.api.client import ProposalFactory, load_signers
from swoosh.chaos.process import cancel_on_signal
from swoosh.chaos.stack import Stack
from swoosh.workflows.testing.driver import valid_inputs

ALL_STEPS = (
    "Boot_ConfigOk",
    "Boot_Licensed",  # licence guard
    "Ingestion_SourcesResolved",  # policy guard
    "Council_ProfilesLoaded",
    "Environment_CapacityOk",
    "Ingestion_BytesOk",
)
STEPS = ALL_STEPS[:3]


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    created: int = 0
    failed: list[str] = field(default_factory=list)
    resends: int = 0


async def _send(http: httpx.AsyncClient, method: str, url: str, tally: Tally, **kw: object) -> httpx.Response:
    """One request, resent (same body) on 429/503 and transport errors, as a caller must."""
    for attempt in range(60):
        try:
            r = await http.request(method, url, **kw)  # type: ignore[arg-type]
        except httpx.TransportError:
            r = None
        if r is not None and r.status_code not in (429, 503):
            return r
        tally.resends += 1
        after = r.headers.get("Retry-After", "") if r is not None else ""
        await asyncio.sleep(min(float(after), 2.0) if after.isdigit() else 0.05 * (attempt + 1))
    if r is not None:
        return r  # the last 429/503: the caller counts it as failed
    raise httpx.ConnectError(f"{method} {url}: no answer after 60 attempts")


async def drive(http: httpx.AsyncClient, factory: ProposalFactory, tally: Tally, steps: int = len(STEPS)) -> None:
    """Create the project and take it through STEPS; each step's latency is one POST."""
    pid = factory.project_id
    r = await _send(http, "PUT", f"/v1/projects/{pid}", tally)
    if r.status_code not in (200, 201):
        tally.failed.append(f"{pid}: PUT {r.status_code} {r.text[:200]}")
        return
    tally.created += 1
    r = await _send(http, "GET", f"/v1/projects/{pid}/state", tally, params={"projection": "meta"})
    if r.status_code != 200:
        tally.failed.append(f"{pid}: GET state {r.status_code} {r.text[:200]}")
        return
    head = r.json()["hash"]
    for n, transition in enumerate(ALL_STEPS[:steps]):
        inputs, _ = valid_inputs(factory, transition, None, n, 0, "backbeat:W-1")
        body = factory.body(transition, head, inputs)
        t0 = time.perf_counter()
        r = await _send(http, "POST", f"/v1/projects/{pid}/transition", tally, json=body)
        tally.latencies_ms.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 202:
            tally.failed.append(f"{pid} {transition}: {r.status_code} {r.text[:200]}")
            return
        head = r.json()["state_post_hash"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1))  # type: ignore[union-attr]
    return rss / 1024, hwm / 1024


async def sdk_metrics(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The worker's sticky-cache metrics (summed over label sets)."""
    text = (await http.get(url)).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = re.match(r"^(temporal_sticky_cache_\w+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


async def run(
    projects: int, concurrency: int, reference: int, root: Path, steps: int, budget_s: float, cache: int | None
) -> str:
    # Room for every project of the run: the reference projects and the API's default one count
    # towards the project quota (SWOOSH_API_MAX_PROJECTS, 10,000 by default) like the rest.
    env = {"SWOOSH_ENGINE_DR_RETAIN": "16", "SWOOSH_API_MAX_PROJECTS": str(projects + reference + 16)}
    if cache is not None:
        env["SWOOSH_WORKER_MAX_CACHED_WORKFLOWS"] = str(cache)
    async with Stack(root, workers=1, extra_env=env) as stack:
        signers = load_signers(stack.keys_dir)
        worker_pid = stack.pids()["worker-0"]
        limits = httpx.Limits(max_connections=concurrency + 4)
        async with (
            httpx.AsyncClient(base_url=stack.api_url, timeout=120.0, trust_env=False, limits=limits) as http,
            httpx.AsyncClient(timeout=10.0, trust_env=False) as scrape,
        ):
            # The single-project reference: projects driven one at a time.
            single = Tally()
            for k in range(reference):
                await drive(http, ProposalFactory(signers, f"ref-{k}", prefix="scale"), single, steps)
            idle_rss, _ = rss_mb(worker_pid)
            print(
                f"single project: {len(single.latencies_ms)} transitions, p50 {pct(single.latencies_ms, 0.5):.1f} ms, "
                f"p99 {pct(single.latencies_ms, 0.99):.1f} ms; worker RSS {idle_rss:.0f} MiB",
                flush=True,
            )
            tally = Tally()
            queue: asyncio.Queue[int] = asyncio.Queue()
            for k in range(projects):
                queue.put_nowait(k)
            pids = {name: pid for name, pid in stack.pids().items() if name in ("temporal", "worker-0", "api")}
            cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
            me_before = time.process_time()
            started = time.perf_counter()
            creations: list[float] = []

            async def caller() -> None:
                while time.perf_counter() - started < budget_s:
                    try:
                        k = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    await drive(http, ProposalFactory(signers, f"scale-{k}", prefix="scale"), tally, steps)
                    creations.append(time.perf_counter())
                    if len(creations) % 1000 == 0:
                        el = time.perf_counter() - started
                        rss, _ = rss_mb(worker_pid)
                        print(
                            f"  {len(creations)} projects in {el:.0f}s ({len(tally.latencies_ms) / el:.0f} tps, "
                            f"p99 so far {pct(tally.latencies_ms, 0.99):.0f} ms, worker RSS {rss:.0f} MiB)",
                            flush=True,
                        )

            await asyncio.gather(*(caller() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            cpu = {name: cpu_s(pid) - cpu_before[name] for name, pid in pids.items()}
            cpu["callers"] = time.process_time() - me_before
            rss, peak = rss_mb(worker_pid)
            cache = await sdk_metrics(scrape, stack.worker_metrics_url(0))
            server_rss, _ = rss_mb(stack.pids()["temporal"])
    tps = len(tally.latencies_ms) / elapsed
    p50, p99 = pct(tally.latencies_ms, 0.5), pct(tally.latencies_ms, 0.99)
    ref50, ref99 = pct(single.latencies_ms, 0.5), pct(single.latencies_ms, 0.99)
    cached = cache.get("temporal_sticky_cache_size", 0.0)
    per_project_kb = (rss - idle_rss) * 1024 / cached if cached else float("nan")
    if tally.created < projects:
        print(f"STOPPED after --max-seconds: {tally.created} of {projects} projects")
    print(f"projects: {tally.created} created in {elapsed:.0f}s ({tally.created / elapsed:.1f}/s, each with its steps)")
    n = len(tally.latencies_ms)
    print(f"transitions: {n} at {tps:.1f}/s with {concurrency} callers; failed {len(tally.failed)}")
    print(
        f"latency: p50 {p50:.1f} ms ({p50 / ref50:.1f}x single), p99 {p99:.1f} ms ({p99 / ref99:.1f}x single p99 "
        f"{ref99:.1f} ms); mean {statistics.fmean(tally.latencies_ms):.1f} ms; resends {tally.resends}"
    )
    print(
        f"worker: RSS {rss:.0f} MiB (peak {peak:.0f}, {idle_rss:.0f} before the load); sticky cache {cached:.0f} "
        f"workflows, {per_project_kb:.0f} KiB RSS per cached project; cache metrics {cache}"
    )
    print(f"temporal dev server RSS {server_rss:.0f} MiB")
    per_t = {name: f"{1000 * c / max(1, n):.1f} ms" for name, c in cpu.items()}
    print(f"CPU per transition (each process; 2 cores = {2000 * elapsed / max(1, n):.1f} ms available): {per_t}")
    for f in tally.failed[:10]:
        print(f"FAILED {f}")
    return f"scale projects={tally.created} tps={tps:.1f} p50_ms={p50:.1f} p99_ms={p99:.1f} worker_rss_mb={rss:.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8, help="callers working through the projects")
    parser.add_argument("--reference", type=int, default=20, help="projects of the single-project reference")
    parser.add_argument("--steps", type=int, default=len(STEPS), choices=range(1, len(ALL_STEPS) + 1))
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--cache", type=int, default=None, help="the worker's sticky cache (default its setting)")
    parser.add_argument(
        "--max-seconds", type=float, default=float("inf"), help="stop starting new projects after this long"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swoosh-scale-") as tmp:
        root = args.root or Path(tmp)
        line = asyncio.run(
            cancel_on_signal(
                run(args.projects, args.concurrency, args.reference, root, args.steps, args.max_seconds, args.cache)
            )
        )
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
