"""End-to-end benchmark: `make bench` (never part of `make test`).

In one run on one Temporal dev server (SQLite file), with one worker process and one API process:
(a) the bare ceiling — a minimal workflow whose Update runs one local activity;
(b) SWOOSH through the Python client's Update path (`swoosh.workflows.lifecycle.client.propose`);
(c) SWOOSH through the HTTP API (`POST /v1/projects/{id}/transition`).
Each sequential (one caller: p50/p99 latency, throughput), 8 concurrent callers (throughput) and
100 projects in parallel (throughput). SWOOSH callers run the EXECUTION loop — every transition has
guards (a local activity, like the ceiling), approvals are signed, and every fourth transition is a
REVERB snapshot point. The three paths are measured in interleaved rounds (bare, update, http, bare,
…), so that drift on the machine and the growth of the server's database weigh on all of them alike;
each figure is the total over its rounds. Between rounds the benchmark waits, untimed, until the
SWOOSH projects have delivered their decision records, so that no path's background work runs in
another path's round; deliveries that fall inside a round are counted in it.
A ratio compares a path with the bare ceiling round by round (each of its rounds ran right after a
bare round): the last line gives the median of those paired ratios, which one noisy round on a shared
machine cannot swing; the ratios of the pooled totals and the range over rounds are printed above it.
The last line: `ratio http_vs_bare_c8=<x.xx> http_vs_bare_seq=<x.xx>`.

`--tracing` turns OpenTelemetry tracing on in the worker and the API (OTLP over HTTP to a stand-in
collector that discards what it gets, `tests/bench/otlp_sink.py`); the benchmark's own callers stay
untraced. The bare ceiling runs in the same worker, so it carries Temporal's tracing plugin too:
compare the SWOOSH paths' throughput and CPU per transition with a run without `--tracing`.

`--encryption off|on|both` (default both, what `make bench` runs): with `on`, SWOOSH's worker, API
and Update-path client also run with payload encryption (`update+enc`, `http+enc`: their own task
queue and API process on the same server, measured in the same interleaved rounds), and a line
`ratio+enc …` plus the difference (the cost of encryption) come before the last line. The bare
ceiling stays plaintext: it is bare Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_health, read_state
from swoosh.workflows.lifecycle.codec import EncryptionSettings, new_key_entry
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LOOP, LifecycleDriver
from swoosh.workflows.testing.environment import binary, search_attribute_flags

WINDOW = "backbeat:W-1"
RESENDS: dict[str, int] = {}  # per transport: resends of the same body after a transient failure
SEQ_OPS, C8_CALLERS, C8_OPS, P100_CALLERS, P100_OPS = 360, 8, 120, 100, 12
ROUNDS = 6  # each measurement is split into this many interleaved rounds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    latencies: list[float]
    round_tps: list[float] = field(default_factory=list)  # one figure per interleaved round
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds each process spent in it

    @property
    def tps(self) -> float:
        return self.ops / self.seconds

    def line(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        head = f"{self.name:<28} {self.ops:>6} ops {self.seconds:>7.2f} s {self.tps:>8.1f}/s"
        return f"{head}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"


Op = Callable[[], Awaitable[None]]


def merge(name: str, parts: list[Result]) -> Result:
    """One figure from a measurement's rounds: all operations over the time spent in them."""
    latencies = [x for r in parts for x in r.latencies]
    cpu = {k: sum(r.cpu_s.get(k, 0.0) for r in parts) for k in parts[0].cpu_s}
    return Result(
        name, sum(r.ops for r in parts), sum(r.seconds for r in parts), latencies, [r.tps for r in parts], cpu
    )


class CpuMeter:
    """CPU seconds (user + system) of the benchmark's processes, from /proc (Linux; empty elsewhere).

    With one caller at a time the processes barely overlap, so a transition's latency follows the CPU
    all of them spend on it; these figures say where it goes, and vary far less than timings do.
    """

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def watch(self, name: str, pid: int | None) -> None:
        if pid is not None and Path(f"/proc/{pid}/stat").exists():
            self.pids[name] = pid

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / self.tick  # utime, stime
        return out


def pid_running(fragment: str) -> int | None:
    """The pid of the process whose command line contains `fragment` (the dev server), if any."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if fragment.encode() in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:
            continue
    return None


METER = CpuMeter()


def paired(path: Result, bare: Result) -> list[float]:
    """The path's throughput over the bare ceiling's, round by round (each pair ran back to back)."""
    return sorted(p / b for p, b in zip(path.round_tps, bare.round_tps, strict=True))


async def measure(name: str, callers: list[Callable[[int], Awaitable[None]]], ops_each: int) -> Result:
    latencies: list[float] = []

    async def run(caller: Callable[[int], Awaitable[None]]) -> None:
        for i in range(ops_each):
            t0 = time.perf_counter()
            await caller(i)
            latencies.append(time.perf_counter() - t0)

    cpu0 = METER.sample()
    t0 = time.perf_counter()
    await asyncio.gather(*(run(c) for c in callers))
    seconds = time.perf_counter() - t0
    cpu = {k: v - cpu0[k] for k, v in METER.sample().items() if k in cpu0}
    return Result(name, len(callers) * ops_each, seconds, latencies, [], cpu)


class SwooshCaller:
    """Drives one project's EXECUTION loop; `send` is the transport under test."""

    def __init__(
        self,
        factory: ProposalFactory,
        head: str,
        doc: dict[str, Any],
        send: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    ) -> None:
        self.factory, self.head, self.send = factory, head, send
        self.approvals = factory.approvals(doc, WINDOW)
        self.k = 0

    async def __call__(self, i: int) -> None:
        name = LOOP[self.k % len(LOOP)]
        inputs: dict[str, Any] = {
            "Execution_PlanLocked": {"plan_hash": "sha256-" + f"{self.k:064x}"},
            "Execution_BeatReviewGate": {},
            "Execution_ApprovalsThreshold": {"approvals": self.approvals},
            "Execution_NextWindow": {},
        }[name]
        body = self.factory.body(name, self.head, inputs, window_id=WINDOW)
        answer = await self.send(body)
        if not answer.get("accepted"):
            raise RuntimeError(f"{name} rejected: {answer}")
        self.head = answer["state_post_hash"]
        self.k += 1


async def drained(client: Client, callers: list[Any], limit_s: float = 30.0) -> None:
    """Wait, untimed, until SWOOSH projects have delivered the decision records of the last round.

    Delivery is asynchronous by design (batched, up to `dr_flush_ms` after a transition). Without
    this wait a round's deliveries would run inside the next path's round, billing one path's
    work to another (it made the Update path look faster than the bare ceiling with 100 projects).
    """
    pids = [c.factory.project_id for c in callers if isinstance(c, SwooshCaller)]
    deadline = time.monotonic() + limit_s
    while pids and time.monotonic() < deadline:
        views = await asyncio.gather(*(read_health(client, pid) for pid in pids))
        pids = [pid for pid, v in zip(pids, views, strict=True) if v.undelivered]
        if pids:
            await asyncio.sleep(0.1)
    if pids:
        raise RuntimeError(f"{len(pids)} project(s) still delivering decision records after {limit_s:g} s")


async def prepare_projects(
    client: Client, signers: Signers, tq: str, prefix: str, n: int
) -> list[tuple[ProposalFactory, str, dict[str, Any]]]:
    async def one(i: int) -> tuple[ProposalFactory, str, dict[str, Any]]:
        pid = f"{prefix}-{i}"
        factory = ProposalFactory(signers, pid)
        await ensure_project(client, pid, signers.keyring(), tq)
        d = LifecycleDriver.for_client(client, factory)
        d.window_id = WINDOW
        await d.lifecycle()
        view = await read_state(client, pid)
        return factory, view.hash, dict(view.projection)

    out = []
    for chunk in range(0, n, 20):  # prepare in slices so the server is not flooded
        out += await asyncio.gather(*(one(i) for i in range(chunk, min(n, chunk + 20))))
    return out


def start_tracing_sink(root: Path) -> subprocess.Popen[bytes]:
    """The stand-in collector, and OTEL_* for the worker and API processes started after it."""
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.otlp_sink", str(port)],
        stdout=open(root / "otlp-sink.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(0.5)
    os.environ.update(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        }
    )
    return sink


async def bench(modes: tuple[str, ...] = ("off",), tracing: bool = False) -> list[Result]:
    root = Path(tempfile.mkdtemp(prefix="swoosh-bench-"))
    key = new_key_entry("bench") if "on" in modes else None
    sealed_env = {"SWOOSH_ENCRYPTION_KEYS": key} if key else {}
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_database_filename=str(root / "temporal.db"),
        dev_server_extra_args=[*search_attribute_flags(), "--log-level", "error"],
        data_converter=pydantic_data_converter,
    )
    address = env.client.service_client.config.target_host
    tq = f"bench-{uuid.uuid4().hex[:6]}"
    signers = Signers.generate()
    keyring = root / "keyring.json"
    keyring.write_text(json.dumps(signers.keyring().model_dump(mode="json")))
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.AsyncClient] = []
    results: list[Result] = []
    sink = start_tracing_sink(root) if tracing else None
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_worker", address, tq, str(root / "sink")],
            stdout=subprocess.PIPE, stderr=open(root / "worker.log", "wb"), env={**os.environ, **sealed_env},
        )  # fmt: skip
        procs.append(worker)
        METER.watch("client", os.getpid())
        METER.watch("worker", worker.pid)
        METER.watch("server", pid_running(str(root / "temporal.db")))
        assert worker.stdout is not None
        if worker.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the benchmark worker did not start; see {root / 'worker.log'}")
        bases: dict[str, str] = {}
        for mode in modes:  # one API process per mode: plaintext, and encrypting with the worker's key
            port = free_port()
            api_env = {**os.environ, "SWOOSH_TEMPORAL_ADDRESS": address,
                       "SWOOSH_TEMPORAL_TASK_QUEUE": tq if mode == "off" else f"{tq}-enc",
                       "SWOOSH_API_PORT": str(port), "SWOOSH_KEYRING": str(keyring),
                       "SWOOSH_DATA_DIR": str(root / f"api-{mode}")}  # fmt: skip
            if mode == "on":
                api_env.update(sealed_env)
            api = subprocess.Popen([sys.executable, "-m", "swoosh.worker.cli", "api", "--log-level", "warning"],
                                   env=api_env, stdout=open(root / f"api-{mode}.log", "wb"),
                                   stderr=subprocess.STDOUT)  # fmt: skip
            procs.append(api)
            METER.watch("api" if mode == "off" else "api+enc", api.pid)
            bases[mode] = f"http://127.0.0.1:{port}"
        for base in bases.values():
            async with httpx.AsyncClient(base_url=base, timeout=30) as probe:
                for _ in range(300):
                    try:
                        if (await probe.get("/health")).status_code < 500:
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.1)
        temporal_clients = {"off": env.client}
        if key:
            sealed = EncryptionSettings(keys=(SecretStr(key),))
            temporal_clients["on"] = await Client.connect(address, data_converter=data_converter(sealed))
        queues = {"off": tq, "on": f"{tq}-enc"}
        client = env.client

        # (a) bare ceiling
        async def bare_callers(n: int) -> list[Callable[[int], Awaitable[None]]]:
            handles = [
                await client.start_workflow("BareCeiling", id=f"bare-{uuid.uuid4().hex[:8]}", task_queue=tq)
                for _ in range(n)
            ]

            def caller(h: Any) -> Callable[[int], Awaitable[None]]:
                async def op(i: int) -> None:
                    await h.execute_update("bump", i)

                return op

            return [caller(h) for h in handles]

        # (b) the Python client's Update path
        async def update_callers(n: int, prefix: str, mode: str = "off") -> list[Callable[[int], Awaitable[None]]]:
            own_client = temporal_clients[mode]
            prepared = await prepare_projects(own_client, signers, queues[mode], prefix, n)

            def caller(f: ProposalFactory, head: str, doc: dict[str, Any]) -> SwooshCaller:
                async def send(body: dict[str, Any]) -> dict[str, Any]:
                    for attempt in range(10):  # resend like a real caller: same body, same idem_key
                        try:
                            a = await propose(own_client, f.project_id, ProposalRequest(body=body))
                            break
                        except RPCError:
                            RESENDS["update"] = RESENDS.get("update", 0) + 1
                            await asyncio.sleep(0.1 * (attempt + 1))
                    else:
                        raise RuntimeError(f"{body['transition']} not answered after 10 attempts")
                    return (
                        a.model_dump(mode="json")
                        if isinstance(a, Accepted)
                        else {"accepted": False, **a.model_dump(mode="json")}
                    )

                return SwooshCaller(f, head, doc, send)

            return [caller(*p) for p in prepared]

        # (c) the HTTP API
        async def http_callers(n: int, prefix: str, mode: str = "off") -> list[Callable[[int], Awaitable[None]]]:
            base = bases[mode]
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                for i in range(n):
                    (await http.put(f"/v1/projects/{prefix}-{i}")).raise_for_status()
            prepared = await prepare_projects(temporal_clients[mode], signers, queues[mode], prefix, n)

            def caller(f: ProposalFactory, head: str, doc: dict[str, Any]) -> SwooshCaller:
                # Every caller is its own agent with its own connection, as in production; one
                # shared httpx pool serving 100 concurrent callers slows the client, not SWOOSH.
                own = httpx.AsyncClient(base_url=base, timeout=30)
                clients.append(own)

                async def send(body: dict[str, Any]) -> dict[str, Any]:
                    # Resend like a real caller (same body, same idem_key) on 429/503 and on a
                    # connection the server closed while idle (uvicorn's keep-alive timeout).
                    outcome = "no answer"
                    for attempt in range(10):
                        try:
                            r = await own.post(f"/v1/projects/{f.project_id}/transition", json=body)
                        except httpx.TransportError as err:
                            outcome = f"{type(err).__name__}"
                        else:
                            if r.status_code not in (429, 503):
                                return dict(r.json())
                            outcome = f"{r.status_code}: {r.text}"
                        RESENDS["http"] = RESENDS.get("http", 0) + 1
                        await asyncio.sleep(0.1 * (attempt + 1))
                    raise RuntimeError(f"{body['transition']} not accepted after 10 attempts: {outcome}")

                return SwooshCaller(f, head, doc, send)

            return [caller(*p) for p in prepared]

        paths: list[tuple[str, Callable[[int, str], Awaitable[list[Callable[[int], Awaitable[None]]]]]]] = [
            ("bare", lambda n, p: bare_callers(n))
        ]
        for mode in modes:
            tag = "" if mode == "off" else "+enc"
            paths.append((f"update{tag}", functools.partial(update_callers, mode=mode)))
            paths.append((f"http{tag}", functools.partial(http_callers, mode=mode)))
        drain_client = {label: temporal_clients["on" if label.endswith("+enc") else "off"] for label, _ in paths}
        shapes = (
            ("sequential", 1, SEQ_OPS),
            ("8 concurrent", C8_CALLERS, C8_OPS),
            ("100 projects", P100_CALLERS, P100_OPS),
        )
        for shape, n, ops in shapes:
            callers = {label: await make(n, f"{label.replace('+', '-')}-{n}") for label, make in paths}
            for label, _ in paths:
                await measure("warmup", callers[label][:8], 4)  # first tasks of fresh workflows
            rounds: dict[str, list[Result]] = {label: [] for label, _ in paths}
            for _ in range(ROUNDS):
                for label, _ in paths:
                    rounds[label].append(await measure(label, callers[label], ops // ROUNDS))
                    await drained(drain_client[label], callers[label])
            for label, _ in paths:
                results.append(merge(f"{label} {shape}", rounds[label]))
                print(results[-1].line(), flush=True)
    finally:
        for c in clients:
            await c.aclose()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        await env.shutdown()
        if sink is not None:
            sink.terminate()
            sink.wait(timeout=15)
            print((root / "otlp-sink.log").read_text().strip(), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="SWOOSH end-to-end benchmark")
    parser.add_argument("--tracing", action="store_true", help="worker and API trace (OTLP to a discarding sink)")
    parser.add_argument(
        "--encryption", choices=["off", "on", "both"], default="both", help="payload encryption of SWOOSH's paths"
    )
    args = parser.parse_args(argv)
    print(f"tracing: {'on (OTLP/HTTP to a discarding sink)' if args.tracing else 'off'}", flush=True)
    modes = {"off": ("off",), "on": ("on",), "both": ("off", "on")}[args.encryption]
    results = asyncio.run(bench(modes, args.tracing))
    by = {r.name: r for r in results}
    shapes = ("sequential", "8 concurrent", "100 projects")
    print(f"resends after a transient failure (429/503/RPC error): {RESENDS or 'none'}")
    tags = ["" if m == "off" else "+enc" for m in modes]
    labels = [f"{p}{t}" for t in tags for p in ("update", "http")]
    medians: dict[tuple[str, str], float] = {}
    for path in labels:
        pooled = {s: by[f"{path} {s}"].tps / by[f"bare {s}"].tps for s in shapes}
        print(f"{path} vs bare, pooled over all rounds: " + ", ".join(f"{s} {r:.2f}" for s, r in pooled.items()))
        parts = []
        for s in shapes:
            ratios = paired(by[f"{path} {s}"], by[f"bare {s}"])
            medians[path, s] = statistics.median(ratios)
            parts.append(f"{s} {medians[path, s]:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})")
        print(f"{path} vs bare, median of {ROUNDS} paired rounds (min-max): " + ", ".join(parts))
    if by["bare sequential"].cpu_s:
        print("CPU ms per transition, by process (client = this benchmark's callers):")
        for s in shapes:
            for path in ("bare", *labels):
                r = by[f"{path} {s}"]
                api = "api+enc" if path.endswith("+enc") else "api"
                each = {
                    k: v / r.ops * 1000
                    for k, v in r.cpu_s.items()
                    if not k.startswith("api") or (path.startswith("http") and k == api)
                }
                cells = " ".join(f"{k} {v:5.2f}" for k, v in each.items())
                print(f"  {path:<10} {s:<12} {cells}  total {sum(each.values()):5.2f}")
    lines = {}
    for tag in tags:
        c8, seq = medians[f"http{tag}", "8 concurrent"], medians[f"http{tag}", "sequential"]
        lines[tag] = (c8, seq)
    if "+enc" in lines:
        c8, seq = lines["+enc"]
        print(f"ratio+enc http_vs_bare_c8={c8:.2f} http_vs_bare_seq={seq:.2f}")
    if "" in lines and "+enc" in lines:
        (c8, seq), (c8e, seqe) = lines[""], lines["+enc"]
        print(f"encryption lowers the ratios by c8 {c8 - c8e:+.2f} seq {seq - seqe:+.2f} (limit 0.03)")
    c8, seq = lines.get("", lines.get("+enc", (0.0, 0.0)))
    print(f"ratio http_vs_bare_c8={c8:.2f} http_vs_bare_seq={seq:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
