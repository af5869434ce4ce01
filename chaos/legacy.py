"""A WHOOSH stand-in for migration rehearsals, served by `swoosh sim` beside the ecosystem simulator.

It has the legacy endpoints SWOOSH forwards to (`POST /transition`, `GET /state`, `GET /health`,
`POST /api/v1/opportunities/council`, `POST /api/v1/tasks`), its own state per project in its own
vocabulary (`{"status", "ingest": {"stage"}, "council": {"status"}, "env": {"stage"}, "loop":
{"phase"}}`, see `STATE_MAP` for how SWOOSH reads it), and honours `Idempotency-Key` (a repeat gets
its first answer). It is deliberately simple: it accepts every catalogued transition a caller may
propose and records the phase the transition leads to (it checks names, bodies and keys, not source
states), so it agrees with SWOOSH on every transition a well-behaved caller sends.

The disagree switch (`PUT /admin/legacy/disagree`) makes it disagree on purpose: every Nth new
mutation rejected (`reject_every`), or applied with a wrong phase recorded (`state_every`); each
injection is logged (`GET /admin/legacy/injections`), as is every mutation it applied
(`GET /admin/legacy/applied`). Faults (latency, 5xx, flapping) come from the simulator's `legacy` family.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from swoosh.workflows.statechart import default_statechart

MAX_PROJECTS = 10_000
MAX_ANSWERS = 4096  # remembered answers per project (idempotency)
MAX_LOG = 200_000
WRONG = "stalled"  # the phase an injected state disagreement records

# The stand-in's words for SWOOSH's states, by region (unlisted: the lower-case state name).
WORDS: dict[str, dict[str, str]] = {
    "top": {
        "UNINITIALIZED": "new",
        "LICENSE_CHECK": "licensing",
        "PROJECT_LIFECYCLE": "forming",
        "EXECUTION": "executing",
        "RECOVERY": "recovering",
    },
    "council": {"PLAN_ROLES": "planning", "ELECT": "electing", "TOOLING_SYNC": "syncing"},
}
REGIONS = {
    "top": ("status",),
    "ingestion": ("ingest", "stage"),
    "council": ("council", "status"),
    "environment": ("env", "stage"),
    "execution": ("loop", "phase"),
}


def word(region: str, state: str) -> str:
    return WORDS.get(region, {}).get(state, state.lower())


def state_map() -> dict[str, dict[str, Any]]:
    """`SWOOSH_MIGRATION_STATE_MAP` for the stand-in: where each SWOOSH phase is in its state JSON."""
    chart = default_statechart()
    out: dict[str, dict[str, Any]] = {}
    for region, path in REGIONS.items():
        machine = chart.machines["top" if region == "top" else region]
        out[region] = {"path": ".".join(path), "values": {word(region, s): s for s in machine.states}}
    return out


class Disagree(BaseModel):
    """The disagree switch: every Nth new mutation (of `transitions`, or any) rejected / given a wrong phase."""

    model_config = ConfigDict(extra="forbid")

    reject_every: int = Field(default=0, ge=0)
    state_every: int = Field(default=0, ge=0)
    transitions: list[str] = Field(default_factory=list)


class Project:
    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.phases = {
            "top": "UNINITIALIZED",
            "ingestion": None,
            "council": None,
            "environment": None,
            "execution": "IDLE",
        }
        self.wrong: dict[str, str] = {}  # regions whose recorded phase was falsified on purpose
        self.returns: list[str] = []
        self.applied = 0
        self.answers: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()

    def view(self) -> dict[str, Any]:
        def shown(region: str) -> str | None:
            if region in self.wrong:
                return self.wrong[region]
            state = self.phases[region]
            return None if state is None else word(region, state)

        return {
            "project_id": self.project_id,
            "status": shown("top"),
            "ingest": {"stage": shown("ingestion")},
            "council": {"status": shown("council")},
            "env": {"stage": shown("environment")},
            "loop": {"phase": shown("execution")},
            "applied": self.applied,
        }

    def digest(self) -> str:
        return "whoosh-" + hashlib.sha256(json.dumps(self.view(), sort_keys=True).encode()).hexdigest()[:32]

    def apply(self, transition: str) -> list[str]:
        """Record where `transition` leads; the regions it touched."""
        chart = default_statechart()
        spec = chart.transitions[transition].spec
        touched: list[str] = []
        if spec.machine == "top":
            if spec.to == "return":
                self.phases["top"] = self.returns.pop() if self.returns else "PROJECT_LIFECYCLE"
            else:
                if spec.to in ("PAUSED", "QUARANTINED"):
                    self.returns.append(str(self.phases["top"]))
                self.phases["top"] = spec.to
            touched.append("top")
        elif spec.machine in self.phases:
            self.phases[spec.machine] = spec.to
            touched.append(spec.machine)
        for effect in spec.effects:
            if effect.op == "set_phase" and effect.machine in self.phases and effect.machine != "top":
                self.phases[effect.machine] = str(effect.value)
                touched.append(effect.machine)
            elif effect.op == "enter_regions":
                for m in effect.machines:
                    self.phases[m] = chart.machines[m].initial
                    touched.append(m)
            elif effect.op == "quarantine" and spec.machine != "top":
                self.returns.append(str(self.phases["top"]))
                self.phases["top"] = "QUARANTINED"
                touched.append("top")
        for region in touched:
            self.wrong.pop(region, None)
        self.applied += 1
        return touched


class LegacyState:
    """The stand-in's projects, switch and logs."""

    def __init__(self) -> None:
        self.projects: OrderedDict[str, Project] = OrderedDict()
        self.disagree = Disagree()
        self.eligible = 0  # new mutations the switch counted
        self.injections: list[dict[str, Any]] = []
        self.applied: list[dict[str, Any]] = []
        self.requests = 0

    def project(self, project_id: str) -> Project:
        p = self.projects.get(project_id)
        if p is None:
            p = self.projects[project_id] = Project(project_id)
            while len(self.projects) > MAX_PROJECTS:
                self.projects.popitem(last=False)
        return p

    def _log(self, log: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        if len(log) < MAX_LOG:
            log.append(entry)

    def mutate(self, project_id: str, transition: str, idem_key: str) -> tuple[int, dict[str, Any]]:
        """Decide one mutation: its first answer again for a repeated key."""
        p = self.project(project_id)
        if idem_key in p.answers:
            status, body = p.answers[idem_key]
            return status, {**body, "duplicate": True}
        status, body = self._decide(p, transition, idem_key)
        p.answers[idem_key] = (status, body)
        while len(p.answers) > MAX_ANSWERS:
            p.answers.popitem(last=False)
        return status, body

    def _decide(self, p: Project, transition: str, idem_key: str) -> tuple[int, dict[str, Any]]:
        chart = default_statechart()
        t = chart.transitions.get(transition)
        if t is None or t.spec.system:
            return 400, {"success": False, "accepted": False, "error": "unknown_transition", "reason": transition[:64]}
        d = self.disagree
        kind = None
        if not d.transitions or transition in d.transitions:
            self.eligible += 1
            if d.reject_every and self.eligible % d.reject_every == 0:
                kind = "reject"
            elif d.state_every and self.eligible % d.state_every == 0:
                kind = "state"
        if kind == "reject":
            self._log(
                self.injections,
                {"project_id": p.project_id, "idem_key": idem_key, "transition": transition, "kind": kind},
            )
            return 400, {
                "success": False,
                "accepted": False,
                "error": "refused",
                "reason": "the legacy system refused it (injected disagreement)",
                "state_hash": p.digest(),
            }
        touched = p.apply(transition)
        if kind == "state" and touched:
            p.wrong[touched[0]] = WRONG  # the transition's own machine: the phase a comparison always reads
            self._log(
                self.injections,
                {"project_id": p.project_id, "idem_key": idem_key, "transition": transition, "kind": kind},
            )
        self._log(self.applied, {"project_id": p.project_id, "idem_key": idem_key, "transition": transition})
        return 202, {
            "success": True,
            "accepted": True,
            "duplicate": False,
            "project_id": p.project_id,
            "transition": transition,
            "idem_key": idem_key,
            "index": p.applied,
            "state_hash": p.digest(),
            "quarantined": p.phases["top"] == "QUARANTINED",
        }


def _bad(reason: str) -> JSONResponse:
    return JSONResponse({"success": False, "accepted": False, "error": "schema", "reason": reason}, status_code=400)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def install(app: FastAPI, state: LegacyState, gate: Callable[[str], Awaitable[JSONResponse | None]]) -> None:
    """Add the stand-in's routes to the simulator's app; `gate(family)` applies the `legacy` faults."""

    def project_of(request: Request, body: Any) -> str:
        from_body = body.get("project_id") if isinstance(body, dict) else None
        return str(
            from_body or request.headers.get("X-Project-Id") or request.query_params.get("project_id") or "default"
        )

    @app.post("/transition", response_model=None)
    async def transition(request: Request) -> JSONResponse:
        if (failed := await gate("legacy")) is not None:
            return failed
        state.requests += 1
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("transition"), str):
            return _bad("a transition body is a JSON object with a transition")
        idem = request.headers.get("Idempotency-Key") or body.get("idem_key")
        if not isinstance(idem, str) or not idem:
            return _bad("the Idempotency-Key header is required")
        status, answer = state.mutate(project_of(request, body), body["transition"], idem)
        return JSONResponse(answer, status_code=status)

    @app.post("/api/v1/opportunities/council", response_model=None)
    async def council(request: Request) -> JSONResponse:
        if (failed := await gate("legacy")) is not None:
            return failed
        state.requests += 1
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("council_id"), str):
            return _bad("a council opportunity has a council_id")
        idem = (
            request.headers.get("Idempotency-Key")
            or "council:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        )
        status, answer = state.mutate(body["council_id"], "Council_ProfilesLoaded", idem)
        return JSONResponse(answer, status_code=status)

    @app.post("/api/v1/tasks", response_model=None)
    async def task(request: Request) -> JSONResponse:
        if (failed := await gate("legacy")) is not None:
            return failed
        state.requests += 1
        body = await _json(request)
        idem = request.headers.get("Idempotency-Key")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not idem:
            return _bad("a task has a type, and the Idempotency-Key header is required")
        status, answer = state.mutate(project_of(request, body), body["type"], idem)
        return JSONResponse(answer, status_code=status)

    @app.get("/state", response_model=None)
    async def get_state(request: Request) -> JSONResponse:
        if (failed := await gate("legacy")) is not None:
            return failed
        project = state.projects.get(project_of(request, None))
        if project is None:
            return JSONResponse({"error": "not_found", "reason": "unknown project"}, status_code=404)
        return JSONResponse(project.view())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "projects": len(state.projects)}

    @app.put("/admin/legacy/disagree")
    async def put_disagree(switch: Disagree) -> Disagree:
        state.disagree = switch
        return switch

    @app.get("/admin/legacy/injections")
    async def injections() -> list[dict[str, Any]]:
        return state.injections

    @app.get("/admin/legacy/applied")
    async def applied() -> list[dict[str, Any]]:
        return state.applied

    @app.get("/admin/legacy/state-map")
    async def get_state_map() -> dict[str, Any]:
        return state_map()
