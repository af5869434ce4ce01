"""A migration rehearsal: unchanged legacy callers run without pause while the mode moves through the brief's steps.

Everything real but the legacy system: the Temporal dev server, a SWOOSH worker (the guard activity
keeps BACKBEAT windows open, so callers need not wait for them), the SWOOSH API, and the simulator's
WHOOSH stand-in as the legacy system, all in one event loop. Callers are unchanged legacy callers:
plain JSON bodies (`transition`, `inputs`), a bearer token bound to a gateway identity, the
idempotency headers, no signature and no state hash; one council caller opens a new project per
cycle through the WHOOSH-compatible council endpoint.

Phases (default): off → shadow → route Council → route Council,Ingestion → route * → bypass → route *.
While the legacy system decides and SWOOSH compares (shadow, partial routes), the stand-in disagrees
on purpose every Nth mutation (a rejection) and every Mth (a wrong phase). After each switch every
caller resends its last accepted request once (it must come back a duplicate). Afterwards
`chaos.rehearsal_report` checks that nothing was lost or applied twice and that every injected
disagreement was reported; `chaos.rehearsal_callers` holds the callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import Signers
from swoosh.api.server.app import create_app
from swoosh.api.server.migration import MigrationSettings
from swoosh.api.server.signing import GatewayKeys
from swoosh.api.server.tokens import ApiToken
from swoosh.chaos.legacy import state_map
from swoosh.chaos.rehearsal_callers import LegacyCaller
from swoosh.chaos.rehearsal_report import RehearsalReport, check
from swoosh.chaos.simulator import SimHandle, running_simulator
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.keyring import Identity, Keyring
from swoosh.workflows.testing.environment import (
    FakeFacts,
    OpenWindowGuards,
    binary,
    lifecycle_worker,
    search_attribute_flags,
)

PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("off", ()),
    ("shadow", ()),
    ("route", ("Council",)),
    ("route", ("Council", "Ingestion")),
    ("route", ("*",)),
    ("bypass", ()),
    ("route", ("*",)),
)


def phase_name(mode: str, routed: tuple[str, ...]) -> str:
    return f"route {','.join(routed)}" if mode == "route" else mode


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop on an ephemeral loopback port; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
    )
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    await server.startup(sockets=[sock])
    task = asyncio.create_task(server.main_loop())
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        await server.shutdown(sockets=[sock])
        sock.close()


class Rehearsal:
    """One rehearsal run: the stack, the callers, the phase switches, the checks."""

    def __init__(
        self,
        root: Path,
        *,
        seconds_per_phase: float = 4.0,
        phases: tuple[tuple[str, tuple[str, ...]], ...] = PHASES,
        callers: dict[str, int] | None = None,
        reject_every: int = 9,
        state_every: int = 13,
    ) -> None:
        self.root = root
        self.seconds = seconds_per_phase
        self.phases = phases
        self.callers = callers or {"council": 2, "ingest": 2, "execution": 2}
        self.reject_every, self.state_every = reject_every, state_every
        self.phase = 0
        self.report = RehearsalReport()
        admin, caller = uuid.uuid4().hex, uuid.uuid4().hex
        self.tokens = (admin, caller)
        self.admin_headers = {"Authorization": f"Bearer {admin}"}
        self.caller_headers = {"Authorization": f"Bearer {caller}"}

    async def run(self) -> RehearsalReport:
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            dev_server_extra_args=search_attribute_flags(),
            data_converter=pydantic_data_converter,
            ui=False,
        )
        try:
            await self._with_server(env)
        finally:
            await env.shutdown()
        self.report.seconds = time.monotonic() - started
        (self.root / "report.json").write_text(json.dumps(self.report.as_json(), indent=2) + "\n", encoding="utf-8")
        return self.report

    async def _with_server(self, env: WorkflowEnvironment) -> None:
        signers = Signers.generate()
        gateway_key = Ed25519PrivateKey.generate()
        gateway = signer_id(gateway_key.public_key())
        keyring = Keyring(signers=(*signers.keyring().signers, Identity(id=gateway, roles=("*",))))
        admin, caller = self.tokens
        tokens = [
            ApiToken(label="operator", secret=SecretStr(admin)),
            ApiToken(label="legacy-callers", secret=SecretStr(caller), scopes=("read", "propose"), gateway=gateway),
        ]
        settings = MigrationSettings.model_validate({"cache_ms": 200, "state_map": state_map(), "retry_after_s": 1})
        async with (
            lifecycle_worker(
                env.client, sink_dir=self.root / "decisions", guard_activities=OpenWindowGuards(FakeFacts())
            ) as task_queue,
            running_simulator() as sim,
        ):
            app = create_app(
                env.client,
                task_queue=task_queue,
                keyring=keyring,
                tokens=tokens,
                migration=settings,
                gateway_keys=GatewayKeys([gateway_key]),
                decision_store=JsonlSink(self.root / "decisions"),
                create_default_project=False,
            )
            async with serve(app) as api, httpx.AsyncClient(base_url=api, timeout=60.0, trust_env=False) as http:
                await self._drive(http, sim, signers)
                await self._check(http, sim)

    async def _set_mode(self, http: httpx.AsyncClient, sim: SimHandle, mode: str, routed: tuple[str, ...]) -> None:
        inject = mode == "shadow" or (mode == "route" and "*" not in routed)
        if not inject:
            await sim.set_disagree()
        body = {"mode": mode, "legacy_url": sim.base_url, "routed": list(routed), "reason": "rehearsal"}
        r = await http.put("/v1/migration", json=body, headers=self.admin_headers)
        if r.status_code != 200:
            raise RuntimeError(f"PUT /v1/migration {mode}: {r.status_code} {r.text[:300]}")
        if inject:
            await sim.set_disagree(reject_every=self.reject_every, state_every=self.state_every)

    async def _drive(self, http: httpx.AsyncClient, sim: SimHandle, signers: Signers) -> None:
        stop = asyncio.Event()
        callers = [
            LegacyCaller(f"{kind[:3]}{n}", kind, http, signers, self)
            for kind, count in self.callers.items()
            for n in range(count)
        ]
        tasks = [asyncio.create_task(c.run_forever(stop)) for c in callers]
        try:
            for i, (mode, routed) in enumerate(self.phases):
                began, before = time.monotonic(), len(self.report.finals)
                await self._set_mode(http, sim, mode, routed)
                self.phase = i
                for c in callers:
                    c.probe.set()
                await asyncio.sleep(self.seconds)
                mine = [f for f in self.report.finals[before:] if f.status == 202 and not f.duplicate and f.phase == i]
                self.report.phases.append(
                    {
                        "phase": phase_name(mode, routed),
                        "seconds": round(time.monotonic() - began, 2),
                        "accepted": len(mine),
                        "by_decider": dict(Counter(f.decided_by for f in mine)),
                    }
                )
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _check(self, http: httpx.AsyncClient, sim: SimHandle) -> None:
        await http.post("/v1/migration/catch-up", headers=self.admin_headers)
        await check(self.report, http, sim, self.caller_headers)
