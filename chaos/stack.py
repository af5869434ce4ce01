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

The same stack spreads over separate hosts when given `hosts` (`chaos.netns` makes them): each
process runs on its host (a launcher prefix such as `ip netns exec …`), binds its host's address and
keeps its files in its host's own folder (the keyring and licence are copied there, nothing else is
shared). With `records="postgres"` a PostgreSQL server (the test kit's) runs on the `postgres` host
and every worker and API replica uses it as the decision-record store; `apis=N` runs N API replicas.

`stop()` (and leaving the `async with`) ends every process the stack started, also after errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import httpx
from temporalio.client import Client

from swoosh.activities.kaching import create_dev_license
from swoosh.api.client import dev_keyring
from swoosh.chaos.process import HOST, REPO_ROOT, Proc, StackError, free_port, port_open
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.lifecycle.connection import TemporalSettings, connect
from swoosh.workflows.testing.environment import binary, search_attribute_flags
from swoosh.workflows.testing.postgres import PostgresServer

WORKER_READY_LINE = b"swoosh worker: task queue"
SIM_READY_LINE = b"swoosh sim: serving on"


@dataclass(frozen=True)
class Host:
    """Where a process runs: a command prefix, the address it binds and its own data folder.

    The default is this machine's loopback with the stack's root as the folder.
    """

    name: str = "local"
    address: str = HOST
    launcher: tuple[str, ...] = ()
    folder: Path | None = None
    bind: str | None = None  # what a server binds, when not `address` (e.g. 0.0.0.0 on a host of its own)


LOCAL = Host()


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
        apis: int = 1,
        hosts: Mapping[str, Host] | None = None,
        records: Literal["jsonl", "postgres"] = "jsonl",
        encryption: EncryptionSettings | None = None,
    ) -> None:
        """`hosts` maps `temporal`, `postgres`, `sim`, `worker-<i>`, `api-<i>` to a Host (default LOCAL)."""
        if workers < 0 or apis < 0:
            raise ValueError("workers and apis must be >= 0")
        self.root = Path(root).resolve()
        self.hosts = dict(hosts or {})
        self.records = records
        self.n_apis = apis
        self.n_workers = workers
        self.no_sticky = no_sticky
        self.simulator = simulator
        self.extra_env = dict(extra_env or {})
        # Payload encryption for every process of the stack and the harness's own client (None = plaintext).
        self.encryption = encryption if encryption is not None and encryption.enabled else None
        self.sim_tempo_bpm = sim_tempo_bpm
        self.sim_beats_per_bar = sim_beats_per_bar
        self.temporal_args = list(temporal_args or [])
        self.ready_timeout_s = ready_timeout_s
        self.logs_dir = self.root / "logs"
        self.temporal_port = free_port()
        self.api_ports = [free_port() for _ in range(apis)]
        self.api_port = self.api_ports[0] if apis else free_port()
        self.sim_port = free_port()
        self.worker_metrics_ports = [free_port() for _ in range(workers)]
        self._temporal: Proc | None = None
        self._workers: list[Proc] = []
        self._apis: list[Proc] = []
        self._sim: Proc | None = None
        self.postgres: PostgresServer | None = None
        self._client: Client | None = None
        self.sim_public_key: str | None = None

    # ------------------------------------------------------------------ addresses and files
    def host(self, role: str) -> Host:
        return self.hosts.get(role, LOCAL)

    def folder(self, role: str) -> Path:
        """The data folder of the process `role` (its host's own folder, else the stack's root)."""
        folder = self.host(role).folder
        return Path(folder).resolve() if folder is not None else self.root

    @property
    def temporal_address(self) -> str:
        return f"{self.host('temporal').address}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return self.api_urls[0] if self.api_urls else f"http://{HOST}:{self.api_port}"

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{self.host(f'api-{i}').address}:{port}" for i, port in enumerate(self.api_ports)]

    @property
    def sim_url(self) -> str | None:
        return f"http://{self.host('sim').address}:{self.sim_port}" if self.simulator else None

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
        return f"http://{self.host(f'worker-{i}').address}:{self.worker_metrics_ports[i]}/metrics"

    def processes(self) -> dict[str, Proc]:
        """Every process the stack manages, by name (running or not)."""
        out: dict[str, Proc] = {}
        for p in (self._temporal, self._sim, *self._workers, *self._apis):
            if p is not None:
                out[p.name] = p
        return out

    def pids(self) -> dict[str, int]:
        out = {name: p.pid for name, p in self.processes().items() if p.pid is not None}
        if self.postgres is not None and self.postgres.pid is not None:
            out["postgres"] = self.postgres.pid
        return out

    # ------------------------------------------------------------------ environment
    def child_env(self, role: str = "api-0") -> dict[str, str]:
        """The environment of a SWOOSH child: the parent's, minus stray SWOOSH_*, plus the stack's for `role`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWOOSH_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        folder = self.folder(role)
        api = int(role.split("-")[1]) if role.startswith("api-") and self.api_ports else 0
        env.update(
            {
                "SWOOSH_TEMPORAL_ADDRESS": self.temporal_address,
                "SWOOSH_DATA_DIR": str(folder),
                "SWOOSH_KEYRING": str(folder / "dev" / "keyring.json"),
                "SWOOSH_API_HOST": self.host(role).address if role.startswith("api-") else HOST,
                "SWOOSH_API_PORT": str(self.api_ports[api] if self.api_ports else self.api_port),
            }
        )
        if self.records == "postgres":
            env["SWOOSH_RECORDS_STORE"] = "postgres"
            env["SWOOSH_RECORDS_POSTGRES_DSN_FILE"] = str(folder / "secrets" / "records-dsn")
        if self.simulator:
            url = str(self.sim_url)
            for provider in ("KACHING", "MCP", "SHHH", "BACKBEAT"):
                env[f"SWOOSH_{provider}_MODE"] = "http"
                env[f"SWOOSH_{provider}_BASE_URL"] = url
            env["SWOOSH_KACHING_TOKEN_FILE"] = str(self.root / "sim" / "sim-token")
            if self.sim_public_key:
                env["SWOOSH_KACHING_PUBLIC_KEY"] = self.sim_public_key
            env["SWOOSH_BACKBEAT_TEMPO_BPM"] = str(self.sim_tempo_bpm)
            env["SWOOSH_BACKBEAT_BEATS_PER_BAR"] = str(self.sim_beats_per_bar)
        if self.encryption is not None:
            env["SWOOSH_ENCRYPTION_KEYS_FILE"] = str(self._key_file())
        env.update(self.extra_env)
        return env

    def _key_file(self) -> Path:
        """The stack's encryption keys for its children, in a file only this user reads (not in the environment)."""
        assert self.encryption is not None
        path = self.root / "secrets" / "encryption.keys"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # The first key listed is the active one unless active_key says otherwise: write that one first.
                active = self.encryption.active_key
                keys = sorted(self.encryption.keys, key=lambda k: not k.get_secret_value().startswith(f"{active}="))
                fh.write("".join(k.get_secret_value() + "\n" for k in keys))
        return path

    # ------------------------------------------------------------------ process definitions
    def _temporal_proc(self) -> Proc:
        cmd = [
            binary("temporal"), "server", "start-dev",
            "--ip", self.host("temporal").bind or self.host("temporal").address, "--port", str(self.temporal_port),
            "--headless", "--http-port", str(free_port()), "--metrics-port", str(free_port()),
            "--db-filename", str(self.db_path),
            "--log-level", "warn",
            *search_attribute_flags(),
            *self.temporal_args,
        ]  # fmt: skip
        # OTEL_* are for SWOOSH's processes; the dev server would refuse exporters it lacks (`console`).
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        return self._on("temporal", Proc("temporal", cmd, env, self.logs_dir / "temporal.log"))

    def _on(self, role: str, proc: Proc) -> Proc:
        """The process, launched on its host."""
        proc.cmd = [*self.host(role).launcher, *proc.cmd]
        return proc

    def _worker_proc(self, i: int) -> Proc:
        role = f"worker-{i}"
        cmd = [
            sys.executable,
            "-m",
            "swoosh.worker.cli",
            "worker",
            "--metrics-bind",
            f"{self.host(role).address}:{self.worker_metrics_ports[i]}",
        ]
        if self.no_sticky:
            cmd.append("--no-sticky")
        return self._on(role, Proc(role, cmd, self.child_env(role), self.logs_dir / f"{role}.log"))

    def _api_proc(self, i: int = 0) -> Proc:
        role = f"api-{i}"
        name = "api" if self.n_apis == 1 else role
        # On a host of its own (`make cluster`: a private network namespace the harness made) the API
        # binds that host's address; the harness's callers send no token, so say so explicitly.
        cmd = [sys.executable, "-m", "swoosh.worker.cli", "api", "--log-level", "warning", "--insecure"]
        return self._on(role, Proc(name, cmd, self.child_env(role), self.logs_dir / f"{name}.log"))

    def _sim_proc(self) -> Proc:
        cmd = [
            *self.host("sim").launcher, sys.executable, "-m", "swoosh.worker.cli", "sim",
            "--host", self.host("sim").address, "--port", str(self.sim_port),
            "--data-dir", str(self.root / "sim"),
            "--tempo-bpm", str(self.sim_tempo_bpm), "--beats-per-bar", str(self.sim_beats_per_bar),
        ]  # fmt: skip
        return Proc("sim", cmd, self.child_env("sim"), self.logs_dir / "sim.log")

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
        if self.records == "postgres":
            await self._start_postgres()
        self._provision_folders()
        if self.simulator:
            self._sim = self._sim_proc()
            self._sim.start()
            await self._wait_sim()
        await self._wait_temporal()
        self._workers = [self._worker_proc(i) for i in range(self.n_workers)]
        for w in self._workers:
            w.start()
        self._apis = [self._api_proc(i) for i in range(self.n_apis)]
        for a in self._apis:
            a.start()
        await self.wait_ready()
        (self.root / "stack.json").write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    async def _start_postgres(self) -> None:
        host = self.host("postgres")
        self.postgres = PostgresServer(
            self.folder("postgres") / "postgres", host=host.address, launcher=list(host.launcher), durable=True
        )
        await asyncio.to_thread(self.postgres.start)

    def _provision_folders(self) -> None:
        """Each host's folder gets its own copy of what its process reads: keyring, licence, DSN file."""
        roles = [f"worker-{i}" for i in range(self.n_workers)] + [f"api-{i}" for i in range(self.n_apis)] + ["sim"]
        for role in roles:
            folder = self.folder(role)
            if folder != self.root:
                (folder / "dev").mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.keyring_path, folder / "dev" / "keyring.json")
                for name in ("license.json", "license.pub"):
                    if (self.root / name).exists():
                        shutil.copy2(self.root / name, folder / name)
            if self.postgres is not None:
                secrets_dir = folder / "secrets"
                secrets_dir.mkdir(parents=True, exist_ok=True)
                dsn_file = secrets_dir / "records-dsn"
                dsn_file.write_text(self.postgres.dsn + "\n", encoding="utf-8")
                dsn_file.chmod(0o600)

    @property
    def postgres_dsn(self) -> str | None:
        """The decision-record store's DSN (a secret) when the stack runs PostgreSQL."""
        return self.postgres.dsn if self.postgres is not None else None

    def describe(self) -> dict[str, object]:
        """Addresses, files and pids: what an operator needs to look at a running stack."""
        return {
            "temporal_address": self.temporal_address,
            "api_url": self.api_url,
            "api_urls": self.api_urls,
            "hosts": {role: {"address": h.address, "folder": str(h.folder)} for role, h in self.hosts.items()},
            "records": self.records,
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
        procs = [*self._apis, *self._workers, self._sim, self._temporal]
        errors: list[BaseException] = []
        for p in procs:
            if p is None:
                continue
            try:
                await p.stop()
            except Exception as err:  # keep stopping the others
                errors.append(err)
        if self.postgres is not None:
            try:
                await asyncio.to_thread(self.postgres.stop)
            except Exception as err:
                errors.append(err)
        if errors:
            raise StackError(f"stopping the stack: {errors[0]!r}")

    async def wait_ready(self) -> None:
        """Wait until Temporal answers, every running worker polls, and the API serves its default project."""
        await self._wait_temporal()
        for i, w in enumerate(self._workers):
            if w.popen is not None:
                await self._wait_worker(i)
        for i, a in enumerate(self._apis):
            if a.popen is not None:
                await self._wait_api(i)

    async def _check_alive(self, proc: Proc, what: str) -> None:
        if proc.popen is not None and proc.popen.poll() is not None:
            raise StackError(f"{proc.name} exited ({proc.popen.returncode}) before {what}; see {proc.log_path}")

    async def _wait_temporal(self) -> None:
        assert self._temporal is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            await self._check_alive(self._temporal, "it was ready")
            if port_open(self.temporal_port, self.host("temporal").address):
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

    async def _wait_api(self, i: int = 0) -> None:
        api = self._apis[i]
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(base_url=self.api_urls[i], timeout=5.0, trust_env=False) as http:
            while time.monotonic() < deadline:
                await self._check_alive(api, "it served")
                try:
                    r = await http.get("/health")
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise StackError(f"{api.name} did not become ready; see {api.log_path}")

    async def _wait_sim(self) -> None:
        assert self._sim is not None
        deadline = time.monotonic() + self.ready_timeout_s
        async with httpx.AsyncClient(base_url=str(self.sim_url), timeout=5.0, trust_env=False) as http:
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
        return await connect(TemporalSettings(address=self.temporal_address), encryption=self.encryption)

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
        w.env = self.child_env(f"worker-{i}")
        w.start()
        if wait:
            await self._wait_worker(i)

    async def restart_api(self, i: int = 0, *, kill: bool = False) -> None:
        """Stop API replica `i` (SIGTERM, or SIGKILL with kill=True) and start it again on the same port."""
        api = self._apis[i]
        await api.stop(kill=kill)
        api.env = self.child_env(f"api-{i}")
        api.start()
        await self._wait_api(i)

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


__all__ = ["LOCAL", "Host", "Proc", "Stack", "StackError", "free_port", "port_open"]
