"""Simulated callers: one per project, driving it through its lifecycle and EXECUTION loops over HTTP.

A caller behaves as docs/contract.md asks of a real one: it signs bodies with the stack's role keys,
keeps an HLC (observing `hlc_last` from GET /state), re-reads the state on `stale_state_hash`,
resends the SAME body (same idem_key) on timeouts, 5xx and 429 (honouring Retry-After), and waits
for the BACKBEAT window a transition needs. It is state-driven: the next transition is chosen from
the phases it reads, so drops, duplicates, restarts and resets never confuse it. Proposal faults
(duplicate, reorder, drop) come from its own seeded generator (`chaos.schedule.ProposalFaults`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from swoosh.activities.backbeat import Schedule
from swoosh.api.client import HLCClock, ProposalFactory, Signers
from swoosh.chaos.schedule import Profile, ProposalFaults
from swoosh.workflows.hlc import HLC
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import valid_inputs

CHART = default_statechart()
REGION_STEPS: dict[str, dict[str, str]] = {
    "ingestion": {
        "DISCOVER": "Ingestion_SourcesResolved",
        "FETCH": "Ingestion_BytesOk",
        "VALIDATE": "Ingestion_SchemaOk",
        "INDEX": "Ingestion_CorpusBuilt",
    },
    "council": {
        "PLAN_ROLES": "Council_ProfilesLoaded",
        "ELECT": "Council_QuorumCert",
        "TOOLING_SYNC": "Council_McpGreen",
    },
    "environment": {
        "ALLOCATE": "Environment_CapacityOk",
        "PROVISION": "Environment_Installed",
        "HEALTHCHECK": "Environment_Green",
        "DEGRADED": "Environment_Green",
    },
}
LOOP_STEPS = {
    "PLAN": "Execution_PlanLocked",
    "WORK": "Execution_BeatReviewGate",
    "REVIEW": "Execution_ApprovalsThreshold",
    "REVERB": "Execution_NextWindow",
}
TOOL_PINS = {"ucxl.resolve": "1.0.0"}  # a tool both the embedded list and the simulator serve
WINDOW_LEAD_MS = 350  # start proposing this long after a phase opens (the workers' frame cache catches up)
WINDOW_MIN_LEFT_MS = 600  # and never with less than this left in the phase
MAX_RETRY_AFTER_S = 5.0


def now_s() -> float:
    return time.monotonic()


@dataclass(frozen=True)
class ReceivedAnswer:
    """An accepted (202) answer as the caller received it."""

    project_id: str
    idem_key: str
    transition: str
    index: int
    state_post_hash: str
    duplicate: bool
    hlc: str
    at: float  # monotonic seconds when received
    reset_epoch: int  # how many resets of this project the caller had been told about


@dataclass
class Observations:
    """Everything callers saw, shared by all callers of a run (single event loop: no locks needed)."""

    attempts: Counter[str] = field(default_factory=Counter)  # by transition: proposals sent (not resends)
    accepted: Counter[str] = field(default_factory=Counter)  # by transition: first-time accepted answers
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by rejection code
    rejected_guard: Counter[str] = field(default_factory=Counter)  # guard_failed by failing guard
    http: Counter[str] = field(default_factory=Counter)  # resend causes: status codes, timeouts, transport errors
    resends: int = 0
    proposal_faults: Counter[str] = field(default_factory=Counter)
    answers: list[ReceivedAnswer] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)  # violations seen while running
    accepted_at: dict[str, list[float]] = field(default_factory=dict)  # project -> times of fresh accepts

    def record_accept(self, a: ReceivedAnswer) -> None:
        self.answers.append(a)
        if a.duplicate:
            self.duplicates += 1
        else:
            self.accepted[a.transition] += 1
            self.accepted_at.setdefault(a.project_id, []).append(a.at)


class Replicas:
    """Several API replicas behind one caller, as a load balancer would spread them: each request goes
    to the next replica (so a resend after a failure usually lands on another one)."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        if not clients:
            raise ValueError("at least one replica")
        self.clients = clients
        self.sent = 0

    async def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        client = self.clients[self.sent % len(self.clients)]
        self.sent += 1
        return await client.request(method, url, **kw)


@dataclass
class Shared:
    """Run-wide conditions injectors set and callers react to."""

    license_trouble: bool = False
    sim_serves_tools: bool = True


class Caller:
    """Drives one project; `run()` until `stop` is set."""

    def __init__(
        self,
        project_id: str,
        http: httpx.AsyncClient | Replicas,
        signers: Signers,
        seed: int,
        profile: Profile,
        beats: Schedule,
        obs: Observations,
        shared: Shared,
        run_tag: str,
    ) -> None:
        self.project_id = project_id
        self.http = http
        self.obs = obs
        self.shared = shared
        self.beats = beats
        self.skew_ms = 0
        self.factory = ProposalFactory(signers, project_id, clock=HLCClock(self._physical_ms), prefix=run_tag)
        self.faults = ProposalFaults(seed, project_id, profile)
        self.rng = random.Random(f"{seed}:{project_id}:choices")
        self.reset_epoch = 0
        self.churn_pending = False
        self.quarantine_probe = False
        self.license_attempted = False
        self.last_index = 0
        self.first_answers: dict[str, ReceivedAnswer] = {}
        self.head: str | None = None
        self.terminated = False
        self.base = f"/v1/projects/{project_id}"

    # ------------------------------------------------------------------ clocks
    def _physical_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms

    def resync_clock(self, hlc_last: str | None) -> None:
        """A fresh HLC on this caller's (possibly skewed) clock, after `hlc_too_far_ahead`."""
        self.factory.clock = HLCClock(self._physical_ms)
        if hlc_last:
            self.factory.clock.observe(HLC.parse(hlc_last))

    def note_reset(self) -> None:
        self.reset_epoch += 1
        self.first_answers.clear()
        self.last_index = 0

    # ------------------------------------------------------------------ HTTP
    async def _request(self, method: str, url: str, stop: asyncio.Event, **kw: Any) -> httpx.Response | None:
        """One logical request, retried on transport errors, 5xx and 429; None once `stop` is set."""
        delay = 0.2
        while not stop.is_set():
            try:
                r = await self.http.request(method, url, **kw)
            except httpx.TimeoutException:
                self.obs.http["timeout"] += 1
            except httpx.TransportError as err:
                self.obs.http[type(err).__name__] += 1
            else:
                if r.status_code < 500 and r.status_code != 429:
                    return r
                self.obs.http[_resend_cause(r)] += 1
                after = r.headers.get("Retry-After", "")
                if after.isdigit():
                    delay = min(float(after), MAX_RETRY_AFTER_S)
            await _sleep(stop, delay)
            delay = min(delay * 2, MAX_RETRY_AFTER_S)
        return None

    async def ensure_project(self, stop: asyncio.Event) -> None:
        await self._request("PUT", self.base, stop)

    async def read_state(self, stop: asyncio.Event) -> dict[str, Any] | None:
        while not stop.is_set():
            r = await self._request("GET", f"{self.base}/state", stop)
            if r is None:
                return None
            if r.status_code == 404:
                await self.ensure_project(stop)
                continue
            if r.status_code != 200:
                self.obs.http[f"state-{r.status_code}"] += 1
                await _sleep(stop, 0.5)
                continue
            view: dict[str, Any] = r.json()
            self.head = view["hash"]
            if view.get("hlc_last"):
                self.factory.clock.observe(HLC.parse(view["hlc_last"]))  # HLC receive rule
            return view
        return None

    async def send(self, body: dict[str, Any], stop: asyncio.Event, *, record: bool = True) -> dict[str, Any] | None:
        """POST the body until it is answered (202/400); the same body, so the same idem_key, on every resend."""
        attempt = 0
        while not stop.is_set():
            headers = {"X-Swoosh-Retry": str(attempt)} if attempt else {}
            r = await self._request("POST", f"{self.base}/transition", stop, json=body, headers=headers)
            if r is None:
                return None
            if r.status_code == 404:
                await self.ensure_project(stop)
                attempt += 1
                self.obs.resends += 1
                continue
            answer: dict[str, Any] = r.json()
            if record:
                self._note(body, r.status_code, answer)
            return answer
        return None

    def _note(self, body: dict[str, Any], status: int, answer: dict[str, Any]) -> None:
        if status == 202 and answer.get("accepted"):
            got = ReceivedAnswer(
                project_id=self.project_id,
                idem_key=str(answer["idem_key"]),
                transition=str(answer["transition"]),
                index=int(answer["index"]),
                state_post_hash=str(answer["state_post_hash"]),
                duplicate=bool(answer.get("duplicate")),
                hlc=str(answer["hlc"]),
                at=now_s(),
                reset_epoch=self.reset_epoch,
            )
            self._check_continuously(body, got)
            self.obs.record_accept(got)
            self.head = got.state_post_hash
            return
        code = str(answer.get("error", f"http-{status}"))
        self.obs.rejected[code] += 1
        if code == "guard_failed":
            self.obs.rejected_guard[str(answer.get("failing_guard"))] += 1
        head = answer.get("head_hash")
        if isinstance(head, str):
            self.head = head

    def _check_continuously(self, body: dict[str, Any], got: ReceivedAnswer) -> None:
        """Cheap invariants on every answer: duplicates repeat the original; indexes only move forward."""
        where = f"{self.project_id} {got.transition} {got.idem_key}"
        if got.idem_key != body["idem_key"] or got.hlc != body["hlc"]:
            self.obs.continuous.append(f"{where}: the answer names another proposal ({got.idem_key}, {got.hlc})")
        first = self.first_answers.get(got.idem_key)
        if first is not None and (first.index, first.state_post_hash) != (got.index, got.state_post_hash):
            self.obs.continuous.append(
                f"{where}: answered index {got.index} after index {first.index} for the same idem_key"
            )
        if first is None:
            self.first_answers[got.idem_key] = got
            if not got.duplicate and got.index <= self.last_index:
                self.obs.continuous.append(f"{where}: index {got.index} not after {self.last_index} (no reset)")
        self.last_index = max(self.last_index, got.index)

    # ------------------------------------------------------------------ choosing the next transition
    def next_transition(self, view: dict[str, Any]) -> tuple[str, dict[str, Any] | None] | None:
        """The transition to propose from this state (inputs None = the driver's valid inputs)."""
        doc = view["projection"]
        top = doc["control"]["top"]
        lic = doc["control"]["license"]["phase"]
        if top == "TERMINATED":
            self.terminated = True
            return None
        if top == "UNINITIALIZED":
            return "Boot_ConfigOk", None
        if top == "LICENSE_CHECK":
            return "Boot_Licensed", None
        if top == "PAUSED":
            return "Control_Resume", {"reason": "chaos caller resumes"}
        if top == "QUARANTINED":
            if self.quarantine_probe:  # QUARANTINED is sticky: anything but a release must be refused
                self.quarantine_probe = False
                return "Environment_Deprovision", {"reason": "probe while quarantined"}
            return "Policy_Release", {"reason": "chaos caller releases"}
        if top in ("PROJECT_LIFECYCLE", "EXECUTION", "RECOVERY"):
            if self.shared.license_trouble and lic == "OK" and not self.license_attempted:
                self.license_attempted = True
                return "License_Throttled", {"reason": "licence server trouble seen by the caller"}
            if not self.shared.license_trouble and lic != "OK":
                return "License_Restored", None
        if top in ("PROJECT_LIFECYCLE", "RECOVERY"):
            if top == "RECOVERY" and self.churn_pending and doc["environment"]["phase"] == "READY":
                self.churn_pending = False
                return "Environment_Deprovision", {"reason": "capacity churn"}
            todo = [REGION_STEPS[r].get(doc[r]["phase"]) for r in ("ingestion", "council", "environment")]
            steps = [t for t in todo if t]
            if steps:
                t = self.rng.choice(steps)
                if (
                    t == "Environment_Green"
                    and doc["environment"]["phase"] == "HEALTHCHECK"
                    and self.rng.random() < 0.2
                ):
                    return "Environment_Amber", {"reason": "healthcheck amber"}
                return t, None
            return ("Execution_AllReady" if top == "PROJECT_LIFECYCLE" else "Recovery_QuorumRestored"), None
        if top == "EXECUTION":
            phase = doc["execution"]["phase"]
            if phase == "PLAN":
                if self.churn_pending:
                    return "Execution_QuorumLost", {"reason": "capacity churn: environment re-provisioned"}
                x = self.rng.random()
                if x < 0.04:
                    return "Control_Pause", {"reason": "chaos operator pause"}
                if x < 0.08:
                    self.quarantine_probe = True
                    return "Policy_Quarantine", {"reason": "chaos: suspected leak, quarantined for review"}
            step = LOOP_STEPS.get(phase)
            return (step, None) if step else None
        return None

    def inputs_for(self, transition: str, doc: dict[str, Any], window_id: str) -> dict[str, Any]:
        if transition == "Council_McpGreen":
            return {"tool_pins": dict(TOOL_PINS)}
        versions = [int(v["version"]) for v in doc["ingestion"]["versions"]]
        inputs, _ = valid_inputs(
            self.factory, transition, doc, doc["meta"]["index"], max(versions, default=0), window_id
        )
        return inputs

    async def window_for(self, transition: str, stop: asyncio.Event) -> str:
        """The window id to name; for a window-gated transition, wait until its phase is open."""
        wclass = CHART.transitions[transition].spec.window
        now_ms = time.time_ns() // 1_000_000
        if wclass is None:
            return self.beats.frame(now_ms).window_id
        while not stop.is_set():
            now_ms = time.time_ns() // 1_000_000
            wid, lo, hi = self.beats.next_open(wclass, now_ms)
            if now_ms >= lo + WINDOW_LEAD_MS and hi - now_ms >= WINDOW_MIN_LEFT_MS:
                return wid
            wait_ms = lo + WINDOW_LEAD_MS - now_ms if now_ms < lo + WINDOW_LEAD_MS else hi - now_ms + WINDOW_LEAD_MS
            await _sleep(stop, max(0.05, wait_ms / 1000))
        return ""

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_project(stop)
        while not stop.is_set() and not self.terminated:
            view = await self.read_state(stop)
            if view is None:
                return
            choice = self.next_transition(view)
            if choice is None:
                await _sleep(stop, 0.5)
                continue
            transition, inputs = choice
            window_id = await self.window_for(transition, stop)
            if stop.is_set():
                return
            if CHART.transitions[transition].spec.window is not None:
                fresh = await self.read_state(stop)  # the state may have moved while we waited
                if fresh is None or fresh["hash"] != view["hash"]:
                    continue
            doc = view["projection"]
            if inputs is None:
                inputs = self.inputs_for(transition, doc, window_id)
            await self.propose(transition, inputs, view, window_id, stop)

    async def propose(
        self, transition: str, inputs: dict[str, Any], view: dict[str, Any], window_id: str, stop: asyncio.Event
    ) -> None:
        head = view["hash"]
        self.obs.attempts[transition] += 1
        fault = self.faults.draw()
        body = self.factory.body(transition, head, inputs, window_id=window_id)
        if fault is not None:
            self.obs.proposal_faults[fault] += 1
        if fault == "duplicate":  # the same body twice at once: one applies, the other is answered duplicate
            answers = await asyncio.gather(self.send(body, stop), self.send(body, stop))
            answer = answers[0]
        elif fault == "reorder":  # a second, later proposal for the same step overtakes the first
            later = self.factory.body(transition, head, inputs, window_id=window_id)
            self.obs.attempts[transition] += 1
            await self.send(later, stop)
            answer = await self.send(body, stop)
        elif fault == "drop":
            if self.rng.random() < 0.5:
                self.obs.proposal_faults["drop_request"] += 1  # lost on the way: the caller times out, resends
                await _sleep(stop, 0.3)
            else:
                self.obs.proposal_faults["drop_answer"] += 1  # applied, but the answer is lost: resend
                await self.send(body, stop, record=False)
            self.obs.resends += 1
            answer = await self.send(body, stop)
        else:
            answer = await self.send(body, stop)
        if answer is None:
            return
        if answer.get("error") == "hlc_too_far_ahead":
            self.resync_clock(view.get("hlc_last"))
        if answer.get("error") == "guard_failed":
            await _sleep(stop, 0.3 + self.rng.random() * 0.4)


def _resend_cause(r: httpx.Response) -> str:
    """The status, and for a 503 whose guards could not be evaluated its error word (provider_hang's effect)."""
    if r.status_code == 503 and b"guards_unavailable" in r.content[:200]:
        return "503-guards_unavailable"
    return str(r.status_code)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake up as soon as the run stops."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        pass


__all__ = ["Caller", "Observations", "ReceivedAnswer", "Replicas", "Shared"]
