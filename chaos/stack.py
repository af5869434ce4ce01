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

This module runs the processes: `chaos.stack_layout` says where each runs and how it is configured
(ports, folders, environment, command line), `chaos.stack_ready` waits until each is ready.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import httpx
from temporalio.client import Client

from swoosh.activities.kaching import create_dev_license
from swoosh.api.client import dev_keyring
from swoosh.chaos.process import Proc, StackError, free_port, port_open
from swoosh.chaos.stack_layout import LOCAL, Host, StackLayout
from swoosh.chaos.stack_ready import wait_http, wait_temporal, wait_worker
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.lifecycle.connection import TemporalSettings, connect
from swoosh.workflows.testing.postgres import PostgresServer

POSTGRES_PORT = 5432  # on a host of its own (`Stack(hosts=…)`)


class Stack(StackLayout):
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
        super().__init__(
            root,
            workers=workers,
            no_sticky=no_sticky,
            simulator=simulator,
            extra_env=extra_env,
            sim_tempo_bpm=sim_tempo_bpm,
            sim_beats_per_bar=sim_beats_per_bar,
            temporal_args=temporal_args,
            apis=apis,
            hosts=hosts,
            records=records,
            encryption=encryption,
        )
        self.ready_timeout_s = ready_timeout_s
        self._temporal: Proc | None = None
        self._workers: list[Proc] = []
        self._apis: list[Proc] = []
        self._sim: Proc | None = None
        self.postgres: PostgresServer | None = None
        self._client: Client | None = None

    # ------------------------------------------------------------------ processes
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
        self._temporal = self.temporal_proc()
        self._temporal.start()
        if self.records == "postgres":
            await self._start_postgres()
        self.provision_folders(self.postgres_dsn)
        if self.simulator:
            self._sim = self.sim_proc()
            self._sim.start()
            await self._wait_sim()
        await self._wait_temporal()
        self._workers = [self.worker_proc(i) for i in range(self.n_workers)]
        for w in self._workers:
            w.start()
        self._apis = [self.api_proc(i) for i in range(self.n_apis)]
        for a in self._apis:
            a.start()
        await self.wait_ready()
        (self.root / "stack.json").write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    async def _start_postgres(self) -> None:
        host = self.host("postgres")
        # On a host of its own (a network namespace) PostgreSQL takes its standard port: a port found free on
        # this machine's loopback says nothing about that host, where the Temporal dev server binds ports too.
        port = None if host == LOCAL else POSTGRES_PORT
        self.postgres = PostgresServer(
            self.folder("postgres") / "postgres",
            host=host.address,
            port=port,
            launcher=list(host.launcher),
            durable=True,
        )
        await asyncio.to_thread(self.postgres.start)

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

    async def _wait_temporal(self) -> None:
        assert self._temporal is not None
        await wait_temporal(
            self._temporal, self.host("temporal").address, self.temporal_port, self._connect, self.ready_timeout_s
        )

    async def _wait_worker(self, i: int) -> None:
        await wait_worker(self._workers[i], self.ready_timeout_s)

    async def _wait_api(self, i: int = 0) -> None:
        api = self._apis[i]
        await wait_http(api, self.api_urls[i], "/health", self.ready_timeout_s, every_s=0.2, what=api.name)

    async def _wait_sim(self) -> None:
        assert self._sim is not None
        r = await wait_http(
            self._sim, str(self.sim_url), "/admin/license-key", self.ready_timeout_s, every_s=0.1, what="the simulator"
        )
        self.sim_public_key = str(r.json()["public_key"])

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
