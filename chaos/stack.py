"""A complete SWOOSH stack as real OS processes on loopback, for chaos runs and end-to-end tests.

`Stack(root)` runs the Temporal dev server on a SQLite file in `root`, N `swoosh worker` processes,
the `swoosh api` process and (optionally) the `swoosh sim` ecosystem simulator, each on ephemeral
free ports, configured only through `SWOOSH_*` variables. Everything a run writes lives under
`root`: `temporal.db`, the dev keyring (`dev/keyring.json`, `dev/keys/<role>.key`), the dev licence,
decision records (`decisions/<project>.jsonl`) and one log file per process under `logs/`.

    async with Stack(tmp_path, workers=2) as stack:
        await stack.kill_worker(0)          # SIGKILL
        await stack.start_worker(0)
        await stack.restart_temporal(kill=True)

`stop()` (and leaving the `async with`) ends every process the stack started, also after errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
from temporalio.client import Client

from swoosh.activities.kaching import create_dev_license
from swoosh.api.client import dev_keyring
from swoosh.chaos.process import HOST, REPO_ROOT, Proc, StackError, free_port, port_open
from swoosh.workflows.lifecycle.connection import TemporalSettings, connect
from swoosh.workflows.testing.environment import binary, search_attribute_flags

WORKER_READY_LINE = b"swoosh worker: task queue"
SIM_READY_LINE = b"swoosh sim: serving on"


class Stack:
    """Temporal dev server + workers + API (+ simulator) as OS processes under `root`."""

    def __init__(
        self,
        root: Path,
        *,
        workers: int = 1,
        no_sticky: bool = False,
        simulator: bool = False,
        extra_env: dict[str, str] | None = None,
        sim_tempo_bpm: int = 30,
        sim_beats_per_bar: int = 4,
        temporal_args: list[str] | None = None,
        ready_timeout_s: float = 90.0,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.root = Path(root).resolve()
        self.n_workers = workers
        self.no_sticky = no_sticky
        self.simulator = simulator
        self.extra_env = dict(extra_env or {})
        self.sim_tempo_bpm = sim_tempo_bpm
        self.sim_beats_per_bar = sim_beats_per_bar
        self.temporal_args = list(temporal_args or [])
        self.ready_timeout_s = ready_timeout_s
        self.logs_dir = self.root / "logs"
        self.temporal_port = free_port()
        self.api_port = free_port()
        self.sim_port = free_port()
        self.worker_metrics_ports = [free_port() for _ in range(workers)]
        self._temporal: Proc | None = None
        self._workers: list[Proc] = []
        self._api: Proc | None = None
        self._sim: Proc | None = None
        self._client: Client | None = None
        self.sim_public_key: str | None = None

    # ------------------------------------------------------------------ addresses and files
    @property
    def temporal_address(self) -> str:
        return f"{HOST}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.api_port}"

    @property
    def sim_url(self) -> str | None:
        return f"http://{HOST}:{self.sim_port}" if self.simulator else None

    @property
    def data_dir(self) -> Path:
        return self.root

    @property
    def keyring_path(self) -> Path:
        return self.root / "dev" / "keyring.json"

    @property
    def keys_dir(self) -> Path:
        return self.root / "dev" / "keys"

    @property
    def signers_path(self) -> Path:
        return self.root / "dev" / "signers.json"

    @property
    def db_path(self) -> Path:
        return self.root / "temporal.db"

    @property
    def decisions_dir(self) -> Path:
        return self.root / "decisions"

    def worker_metrics_url(self, i: int) -> str:
        return f"http://{HOST}:{self.worker_metrics_ports[i]}/metrics"

    def processes(self) -> dict[str, Proc]:
        """Every process the stack manages, by name (running or not)."""
        out: dict[str, Proc] = {}
        for p in (self._temporal, self._sim, *self._workers, self._api):
            if p is not None:
                out[p.name] = p
        return out

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes().items() if p.pid is not None}

    # ------------------------------------------------------------------ environment
    def child_env(self) -> dict[str, str]:
        """The environment of every SWOOSH child: the parent's, minus stray SWOOSH_*, plus the stack's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWOOSH_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        env.update(
            {
                "SWOOSH_TEMPORAL_ADDRESS": self.temporal_address,
                "SWOOSH_DATA_DIR": str(self.root),
                "SWOOSH_KEYRING": str(self.keyring_path),
                "SWOOSH_API_HOST": HOST,
                "SWOOSH_API_PORT": str(self.api_port),
            }
        )
        if self.simulator:
            url = f"http://{HOST}:{self.sim_port}"
            for provider in ("KACHING", "MCP", "SHHH", "BACKBEAT"):
                env[f"SWOOSH_{provider}_MODE"] = "http"
                env[f"SWOOSH_{provider}_BASE_URL"] = url
            env["SWOOSH_KACHING_TOKEN_FILE"] = str(self.root / "sim" / "sim-token")
            if self.sim_public_key:
                env["SWOOSH_KACHING_PUBLIC_KEY"] = self.sim_public_key
            env["SWOOSH_BACKBEAT_TEMPO_BPM"] = str(self.sim_tempo_bpm)
            env["SWOOSH_BACKBEAT_BEATS_PER_BAR"] = str(self.sim_beats_per_bar)
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ process definitions
    def _temporal_proc(self) -> Proc:
        cmd = [
            binary("temporal"), "server", "start-dev",
            "--ip", HOST, "--port", str(self.temporal_port),
            "--headless", "--http-port", str(free_port()), "--metrics-port", str(free_port()),
            "--db-filename", str(self.db_path),
            "--log-level", "warn",
            *search_attribute_flags(),
            *self.temporal_args,
        ]  # fmt: skip
        return Proc("temporal", cmd, dict(os.environ), self.logs_dir / "temporal.log")

    def _worker_proc(self, i: int) -> Proc:
        cmd = [
            sys.executable,
            "-m",
            "swoosh.worker.cli",
            "worker",
            "--metrics-bind",
            f"{HOST}:{self.worker_metrics_ports[i]}",
        ]
        if self.no_sticky:
            cmd.append("--no-sticky")
        return Proc(f"worker-{i}", cmd, self.child_env(), self.logs_dir / f"worker-{i}.log")

    def _api_proc(self) -> Proc:
        cmd = [sys.executable, "-m", "swoosh.worker.cli", "api", "--log-level", "warning"]
        return Proc("api", cmd, self.child_env(), self.logs_dir / "api.log")

    def _sim_proc(self) -> Proc:
        cmd = [
            sys.executable, "-m", "swoosh.worker.cli", "sim", "--host", HOST, "--port", str(self.sim_port),
            "--data-dir", str(self.root / "sim"),
            "--tempo-bpm", str(self.sim_tempo_bpm), "--beats-per-bar", str(self.sim_beats_per_bar),
        ]  # fmt: skip
        return Proc("sim", cmd, self.child_env(), self.logs_dir / "sim.log")

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every process and wait until each is ready; on any failure stop what was started."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        dev_keyring(self.root)
        create_dev_license(self.root)
        self._temporal = self._temporal_proc()
        self._temporal.start()
        if self.simulator:
            self._sim = self._sim_proc()
            self._sim.start()
            await self._wait_sim()
        await self._wait_temporal()
        self._workers = [self._worker_proc(i) for i in range(self.n_workers)]
        for w in self._workers:
            w.start()
        self._api = self._api_proc()
        self._api.start()
        await self.wait_ready()
        (self.root / "stack.json").write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    def describe(self) -> dict[str, object]:
        """Addresses, files and pids: what an operator needs to look at a running stack."""
        return {
            "temporal_address": self.temporal_address,
            "api_url": self.api_url,
            "sim_url": self.sim_url,
            "data_dir": str(self.data_dir),
            "keyring": str(self.keyring_path),
            "keys_dir": str(self.keys_dir),
            "logs": str(self.logs_dir),
            "worker_metrics": [self.worker_metrics_url(i) for i in range(self.n_workers)],
            "pids": self.pids(),
        }

    async def stop(self) -> None:
        """Stop every process this stack started (API first, Temporal last); never raises for a dead child."""
        if self._client is not None:
            self._client = None
        procs = [self._api, *self._workers, self._sim, self._temporal]
        errors: list[BaseException] = []
        for p in procs:
            if p is None:
                continue
            try:
                await p.stop()
            except Exception as err:  # keep stopping the others
                errors.append(err)
        if errors:
            raise StackError(f"stopping the stack: {errors[0]!r}")

    async def wait_ready(self) -> None:
        """Wait until Temporal answers, every running worker polls, and the API serves its default project."""
        await self._wait_temporal()
        for i, w in enumerate(self._workers):
            if w.popen is not None:
                await self._wait_worker(i)
        if self._api is not None and self._api.popen is not None:
            await self._wait_api()

    async def _check_alive(self, proc: Proc, what: str) -> None:
        if proc.popen is not None and proc.popen.poll() is not None:
            raise StackError(f"{proc.name} exited ({proc.popen.returncode}) before {what}; see {proc.log_path}")

    async def _wait_temporal(self) -> None:
        assert self._temporal is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            await self._check_alive(self._temporal, "it was ready")
            if port_open(self.temporal_port):
                try:
                    client = await asyncio.wait_for(self._connect(), 5)
                    if await client.service_client.check_health():
                        return
                except (RuntimeError, TimeoutError, OSError):
                    pass
            await asyncio.sleep(0.2)
        raise StackError(f"the Temporal dev server did not become ready; see {self._temporal.log_path}")

    async def _wait_worker(self, i: int) -> None:
        w = self._workers[i]
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            await self._check_alive(w, "it polled")
            if WORKER_READY_LINE in w.log_since_start():
                return
            await asyncio.sleep(0.1)
        raise StackError(f"{w.name} did not start polling; see {w.log_path}")

    async def _wait_api(self) -> None:
        assert self._api is not None
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                await self._check_alive(self._api, "it served")
                try:
                    r = await http.get("/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise StackError(f"the API did not become ready; see {self._api.log_path}")

    async def _wait_sim(self) -> None:
        assert self._sim is not None
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{self.sim_port}", timeout=5.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                await self._check_alive(self._sim, "it served")
                try:
                    r = await http.get("/admin/license-key")
                    if r.status_code == 200:
                        self.sim_public_key = str(r.json()["public_key"])
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise StackError(f"the simulator did not become ready; see {self._sim.log_path}")

    # ------------------------------------------------------------------ clients
    async def _connect(self) -> Client:
        return await connect(TemporalSettings(address=self.temporal_address))

    async def client(self) -> Client:
        """A Temporal client (pydantic data converter) for this stack's server; reconnects by itself."""
        if self._client is None:
            self._client = await self._connect()
        return self._client

    def http(self, timeout_s: float = 30.0) -> httpx.AsyncClient:
        """An httpx client for the API (the caller closes it)."""
        return httpx.AsyncClient(base_url=self.api_url, timeout=timeout_s, trust_env=False)

    # ------------------------------------------------------------------ faults
    def worker_running(self, i: int) -> bool:
        return self._workers[i].running()

    async def kill_worker(self, i: int) -> None:
        """SIGKILL worker `i` (no graceful shutdown: in-flight tasks time out and move to another worker)."""
        await self._workers[i].stop(kill=True)

    async def stop_worker(self, i: int) -> None:
        """SIGTERM worker `i` and wait for it (graceful)."""
        await self._workers[i].stop()

    async def start_worker(self, i: int, *, wait: bool = True) -> None:
        """(Re)start worker `i` with its same metrics port."""
        w = self._workers[i]
        w.env = self.child_env()
        w.start()
        if wait:
            await self._wait_worker(i)

    async def restart_api(self, *, kill: bool = False) -> None:
        """Stop the API (SIGTERM, or SIGKILL with kill=True) and start it again on the same port."""
        assert self._api is not None
        await self._api.stop(kill=kill)
        self._api.env = self.child_env()
        self._api.start()
        await self._wait_api()

    async def restart_temporal(self, *, kill: bool = False, down_s: float = 0.0) -> None:
        """Stop the dev server (SIGTERM, or SIGKILL) and start it again on the same SQLite file and port."""
        assert self._temporal is not None
        await self._temporal.stop(kill=kill)
        if down_s > 0:
            await asyncio.sleep(down_s)
        self._temporal.start()
        await self._wait_temporal()

    async def restart_simulator(self) -> None:
        assert self._sim is not None
        await self._sim.stop()
        self._sim.start()
        await self._wait_sim()


__all__ = ["Proc", "Stack", "StackError", "free_port", "port_open"]
