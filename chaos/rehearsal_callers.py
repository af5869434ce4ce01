"""The unchanged legacy callers of a migration rehearsal: WHOOSH bodies, idempotency headers, a bearer token.

A `LegacyCaller` runs its own script (council, ingestion, execution) project after project without
pause, whatever the migration mode: a refusal is resent as a new mutation, a 5xx, 429 or transport
error resends the same key, and after each mode switch it resends its last accepted request once.
Every final answer goes into the run's `RehearsalReport`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any, Protocol

import httpx

from swoosh.api.client import HLCClock, ProposalFactory, Signers
from swoosh.chaos.rehearsal_report import Final, RehearsalReport
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP, STATE_DEPENDENT, valid_inputs

WINDOW = "backbeat:W-1"
INGEST_CYCLE = ("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt")
ENV_CYCLE = ("Environment_Deprovision", "Environment_CapacityOk", "Environment_Installed", "Environment_Green")
CHART = default_statechart()
COUNCIL = "council-opportunity"  # the council caller's step sent to the WHOOSH-compatible endpoint
MAX_REFUSALS = 30  # rejections of one step before a caller gives up (a broken run, not a slow one)


class RehearsalRun(Protocol):
    """What a caller shares with the run it belongs to."""

    report: RehearsalReport
    phase: int  # the position of the mode in force
    admin_headers: dict[str, str]
    caller_headers: dict[str, str]


class LegacyCaller:
    """An unchanged WHOOSH caller: legacy bodies, idempotency headers, a bearer token; its own script."""

    def __init__(self, name: str, kind: str, http: httpx.AsyncClient, signers: Signers, run: RehearsalRun) -> None:
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
