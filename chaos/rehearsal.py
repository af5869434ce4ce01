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
caller resends its last accepted request once (it must come back a duplicate). Afterwards:

- lost: an accepted mutation (a 202 a caller got) missing from SWOOSH's decision records;
- twice: a key in SWOOSH's records or the stand-in's applied log more than once, or a key SWOOSH
  decided in the stand-in's log, or a resend after a switch that was applied anew;
- injected: every disagreement the stand-in injected must be a divergence of that same mutation in
  the project's ledger (reported before the caller got the answer); a divergence nothing injected is
  a false one.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import HLCClock, ProposalFactory, Signers
from swoosh.api.server.app import create_app
from swoosh.api.server.migration import MigrationSettings
from swoosh.api.server.signing import GatewayKeys
from swoosh.api.server.tokens import ApiToken
from swoosh.chaos.legacy import state_map
from swoosh.chaos.simulator import SimHandle, running_simulator
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.keyring import Identity, Keyring
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP, STATE_DEPENDENT, valid_inputs
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
WINDOW = "backbeat:W-1"
INGEST_CYCLE = ("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt")
ENV_CYCLE = ("Environment_Deprovision", "Environment_CapacityOk", "Environment_Installed", "Environment_Green")
CHART = default_statechart()
COUNCIL = "council-opportunity"  # the council caller's step sent to the WHOOSH-compatible endpoint
MAX_REFUSALS = 30  # rejections of one step before a caller gives up (a broken run, not a slow one)


def phase_name(mode: str, routed: tuple[str, ...]) -> str:
    return f"route {','.join(routed)}" if mode == "route" else mode


@dataclass
class Final:
    """The final answer a caller got for one mutation (one idempotency key)."""

    project_id: str
    transition: str
    idem_key: str
    status: int
    decided_by: str
    duplicate: bool
    phase: int


@dataclass
class RehearsalReport:
    phases: list[dict[str, Any]] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    accepted: int = 0
    by_decider: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    refusals_seen: int = 0  # legacy refusals the callers got
    reported_before_next: int = 0  # of them, already divergences when the caller looked, before its next send
    resends: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    injected: int = 0
    reported: int = 0
    missed: list[str] = field(default_factory=list)
    false_divergences: list[str] = field(default_factory=list)
    probes: int = 0
    probes_applied_again: list[str] = field(default_factory=list)
    caller_failures: list[str] = field(default_factory=list)
    swoosh_records: int = 0
    legacy_applied: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.twice or self.missed or self.false_divergences)

    def summary_line(self) -> str:
        return (
            f"rehearsal phases={len(self.phases)} accepted={self.accepted} lost={len(self.lost)} "
            f"twice={len(self.twice)} injected={self.injected} reported={self.reported} "
            f"false={len(self.false_divergences)} probes={self.probes} seconds={self.seconds:.1f}"
        )

    def lines(self) -> list[str]:
        out = []
        for p in self.phases:
            deciders = ", ".join(f"{k} {v}" for k, v in sorted(p["by_decider"].items())) or "-"
            out.append(f"{p['phase']:<24} {p['seconds']:5.1f} s  accepted {p['accepted']:4d}  ({deciders})")
        out.append(
            f"SWOOSH records {self.swoosh_records}, legacy applied {self.legacy_applied}, "
            f"refused-and-resent {self.refused}, transport resends {self.resends}, legacy refusals reported "
            f"before the caller's next send {self.reported_before_next}/{self.refusals_seen}"
        )
        for name, items in (
            ("lost", self.lost),
            ("applied twice", self.twice),
            ("missed divergences", self.missed),
            ("false divergences", self.false_divergences),
            ("resends applied again", self.probes_applied_again),
            ("caller failures", self.caller_failures),
        ):
            for item in items[:20]:
                out.append(f"{name}: {item}")
        out.append(self.summary_line())
        return out


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


class LegacyCaller:
    """An unchanged WHOOSH caller: legacy bodies, idempotency headers, a bearer token; its own script."""

    def __init__(self, name: str, kind: str, http: httpx.AsyncClient, signers: Signers, run: Rehearsal) -> None:
        self.name, self.kind, self.http, self.run = name, kind, http, run
        self.signers = signers
        self.clock = HLCClock()
        self.factory = ProposalFactory(signers, "unset", clock=self.clock)
        self.project_id = ""
        self.version = 0
        self.steps = 0
        # Region epochs the project has reached by this caller's accepted transitions, whoever decided
        # them: while SWOOSH applies nothing (bypass) its state lags, and a vote must name the election
        # epoch SWOOSH will have when it catches up (epoch.council + epoch.execution).
        self.epochs: Counter[str] = Counter()
        self.last: tuple[str, str, dict[str, Any], dict[str, str]] | None = None  # path, key, body, headers
        self.probe = asyncio.Event()

    # ------------------------------------------------------------------ one project
    async def new_project(self) -> None:
        self.project_id = f"r-{self.name}-{uuid.uuid4().hex[:8]}"
        self.factory = ProposalFactory(self.signers, self.project_id, clock=self.clock)
        self.version = 0
        self.epochs = Counter()
        while True:
            r = await self.http.put(f"/v1/projects/{self.project_id}", headers=self.run.admin_headers)
            if r.status_code in (200, 201):
                return
            await asyncio.sleep(0.2)

    async def state(self) -> dict[str, Any]:
        while True:
            r = await self.http.get(f"/v1/projects/{self.project_id}/state", headers=self.run.caller_headers)
            if r.status_code == 200:
                view: dict[str, Any] = r.json()
                return dict(view["projection"])
            await asyncio.sleep(0.2)

    def script(self) -> list[str]:
        if self.kind == "council":
            return ["Boot_ConfigOk", "Boot_Licensed", COUNCIL, "Council_QuorumCert", "Council_McpGreen"]
        if self.kind == "execution":
            return list(LIFECYCLE)
        return ["Boot_ConfigOk", "Boot_Licensed", *INGEST_CYCLE, *ENV_CYCLE[1:]]

    def cycle(self) -> list[str]:
        if self.kind == "execution":
            return list(LOOP)
        return [*INGEST_CYCLE, *ENV_CYCLE]

    async def run_forever(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                await self.new_project()
                for step in self.script():
                    if not await self.step(step, stop):
                        return
                if self.kind == "council":
                    continue
                while not stop.is_set():
                    for step in self.cycle():
                        if not await self.step(step, stop):
                            return
        except Exception as err:  # a caller that breaks is a finding, not a crash of the rehearsal
            self.run.report.caller_failures.append(f"{self.name}: {type(err).__name__}: {err}")

    # ------------------------------------------------------------------ one mutation
    async def step(self, transition: str, stop: asyncio.Event) -> bool:
        """Send `transition` until it is accepted (a refusal is resent as a new mutation); False when stopped."""
        if self.probe.is_set():
            self.probe.clear()
            await self.resend_last()
        refusals = 0
        while not stop.is_set():
            path, key, body, headers = await self.build(transition)
            final = await self.send(path, key, body, headers, transition)
            if final is None:
                return False
            if final.status == 202:
                self.last = (path, key, body, headers)
                self.steps += 1
                name = "Council_ProfilesLoaded" if transition == COUNCIL else transition
                if name in CHART.transitions and not final.duplicate:
                    self.epochs[CHART.transitions[name].spec.epoch] += 1
                return True
            refusals += 1
            self.run.report.refused += 1
            if final.decided_by == "legacy":
                await self.check_reported(key)
            if refusals > MAX_REFUSALS:
                self.run.report.caller_failures.append(
                    f"{self.name} {self.project_id} {transition}: refused {refusals} times (last HTTP {final.status})"
                )
                return False
        return False

    async def build(self, transition: str) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        key = f"{self.name}:{uuid.uuid4().hex}"
        headers = {
            **self.run.caller_headers,
            "Idempotency-Key": key,
            "X-HLC": self.clock.now().format(),
            "X-Window-Id": WINDOW,
            "X-Project-Id": self.project_id,
        }
        if transition == COUNCIL:
            body: dict[str, Any] = {
                "council_id": self.project_id,
                "project_name": f"rehearsal {self.project_id}",
                "repository": "https://git.example/rehearsal.git",
                "project_brief": "migration rehearsal",
                "core_roles": [{"role_name": "architect", "agent_name": "a1", "required": True}],
                "optional_roles": [{"role_name": "reviewer", "agent_name": "a2", "required": False}],
                "ucxl_address": f"ucxl://whoosh:council@{self.project_id}:formation/*^/brief",
                "metadata": {"rehearsal": True},
            }
            return "/api/v1/opportunities/council", key, body, headers
        doc = await self.state() if transition in STATE_DEPENDENT else None  # the driver's own list
        if doc is not None:
            for region in ("council", "execution"):
                doc["epoch"][region] = max(int(doc["epoch"][region]), self.epochs[region])
        inputs, self.version = valid_inputs(self.factory, transition, doc, self.steps, self.version, WINDOW)
        if transition == "Execution_BeatReviewGate":
            inputs = {"work_evidence": [f"ucxl://agent:dev@{self.project_id}:work/*~{self.steps}/out"]}
        return "/transition", key, {"transition": transition, "inputs": inputs}, headers

    async def send(
        self,
        path: str,
        key: str,
        body: dict[str, Any],
        headers: dict[str, str],
        transition: str,
        *,
        probe: bool = False,
    ) -> Final | None:
        """POST until answered (202/4xx/501); 5xx, 429 and transport errors resend the same key."""
        name = "Council_ProfilesLoaded" if transition == COUNCIL else transition
        phase = self.run.phase  # the mode in force when it was first sent
        while True:
            try:
                r = await self.http.post(path, json=body, headers=headers)
            except httpx.HTTPError:
                self.run.report.resends += 1
                await asyncio.sleep(0.1)
                continue
            if (r.status_code >= 500 and r.status_code != 501) or r.status_code == 429:
                self.run.report.resends += 1
                after = r.headers.get("Retry-After", "")
                await asyncio.sleep(min(float(after), 0.3) if after.isdigit() else 0.1)
                continue
            answer = r.json() if r.content else {}
            final = Final(
                project_id=self.project_id,
                transition=name,
                idem_key=key,
                status=r.status_code,
                decided_by=r.headers.get("X-Swoosh-Decided-By", "?"),
                duplicate=bool(answer.get("duplicate")) if isinstance(answer, dict) else False,
                phase=phase,
            )
            if not probe:
                self.run.report.finals.append(final)
            if r.status_code == 501:
                self.run.report.caller_failures.append(f"{self.name} {self.project_id}: 501 {answer}")
            return final

    async def check_reported(self, key: str) -> None:
        """A legacy refusal the caller just got is already a divergence in the ledger (when it was compared)."""
        r = await self.http.get(
            f"/v1/projects/{self.project_id}/shadow", params={"limit": 20}, headers=self.run.caller_headers
        )
        keys = {d["idem_key"] for d in r.json().get("divergences", [])} if r.status_code == 200 else set()
        self.run.report.refusals_seen += 1
        if key in keys:
            self.run.report.reported_before_next += 1

    async def resend_last(self) -> None:
        """After a switch: the last accepted request again, as a retrying caller would; must not apply anew."""
        if self.last is None:
            return
        path, key, body, headers = self.last
        transition = body.get("transition", COUNCIL) if isinstance(body, dict) else COUNCIL
        final = await self.send(path, key, body, headers, str(transition), probe=True)
        if final is None:
            return
        self.run.report.probes += 1
        if final.status != 202 or not final.duplicate:
            self.run.report.probes_applied_again.append(
                f"{self.project_id} {final.transition} {key}: HTTP {final.status}, duplicate {final.duplicate}"
            )


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
        (self.root / "report.json").write_text(json.dumps(self.as_json(), indent=2) + "\n", encoding="utf-8")
        return self.report

    def as_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "ok": r.ok,
            "phases": r.phases,
            "accepted": r.accepted,
            "by_decider": r.by_decider,
            "lost": r.lost,
            "twice": r.twice,
            "injected": r.injected,
            "reported": r.reported,
            "missed": r.missed,
            "false_divergences": r.false_divergences,
            "probes": r.probes,
            "probes_applied_again": r.probes_applied_again,
            "legacy_refusals_seen": r.refusals_seen,
            "legacy_refusals_reported_before_next_send": r.reported_before_next,
            "caller_failures": r.caller_failures,
            "swoosh_records": r.swoosh_records,
            "legacy_applied": r.legacy_applied,
            "seconds": round(r.seconds, 2),
        }

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
        r = self.report
        await http.post("/v1/migration/catch-up", headers=self.admin_headers)
        accepted = [f for f in r.finals if f.status == 202]
        r.accepted = len({(f.project_id, f.idem_key) for f in accepted if not f.duplicate})
        r.by_decider = dict(Counter(f.decided_by for f in accepted if not f.duplicate))
        projects = sorted({f.project_id for f in r.finals})
        records: Counter[tuple[str, str]] = Counter()
        divergences: dict[tuple[str, str], list[str]] = {}
        for project in projects:
            after = 0
            while True:
                resp = await http.get(
                    f"/v1/projects/{project}/decisions",
                    params={"after_index": after, "limit": 1000},
                    headers=self.caller_headers,
                )
                if resp.status_code != 200:
                    raise RuntimeError(
                        f"decisions of {project} after {after}: HTTP {resp.status_code} {resp.text[:200]}"
                    )
                page = resp.json()
                for rec in page.get("records", []):
                    records[(project, rec["idem_key"])] += 1
                if page.get("next_after_index", after) == after or not page.get("records"):
                    break
                after = page["next_after_index"]
            shadow = (
                await http.get(f"/v1/projects/{project}/shadow", params={"limit": 200}, headers=self.caller_headers)
            ).json()
            for d in shadow.get("divergences", []):
                divergences.setdefault((project, d["idem_key"]), []).append(d["kind"])
        r.swoosh_records = sum(records.values())
        applied = await sim.legacy_log("applied")
        legacy = Counter((a["project_id"], a["idem_key"]) for a in applied if a["project_id"] in projects)
        r.legacy_applied = sum(legacy.values())
        for f in accepted:
            if records[(f.project_id, f.idem_key)] == 0:
                r.lost.append(
                    f"{f.project_id} {f.transition} {f.idem_key} (decided by {f.decided_by}, phase {f.phase})"
                )
        r.lost = sorted(set(r.lost))
        r.twice += [f"SWOOSH applied {k} {n} times" for k, n in records.items() if n > 1]
        r.twice += [f"the legacy system applied {k} {n} times" for k, n in legacy.items() if n > 1]
        swoosh_keys = {(f.project_id, f.idem_key) for f in accepted if f.decided_by == "swoosh"}
        r.twice += [f"SWOOSH decided {k} and the legacy system applied it too" for k in swoosh_keys if legacy[k]]
        r.twice += [f"a resend after a switch was applied again: {p}" for p in r.probes_applied_again]
        injections = [i for i in await sim.legacy_log("injections") if i["project_id"] in projects]
        expected = {"reject": "decision", "state": "state"}
        r.injected = len(injections)
        injected_keys = set()
        for inj in injections:
            key = (inj["project_id"], inj["idem_key"])
            injected_keys.add(key)
            if expected[inj["kind"]] in divergences.get(key, []):
                r.reported += 1
            else:
                r.missed.append(f"{inj['kind']} on {inj['transition']} {key}: reported as {divergences.get(key, [])}")
        for key, kinds in divergences.items():
            if key not in injected_keys:
                r.false_divergences.append(f"{key}: {kinds}")
