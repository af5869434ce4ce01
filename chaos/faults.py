"""Fault injectors: processes (SIGKILL, restarts), workflows (snapshot, reset), ecosystem, caller clocks.

Each injector takes a scheduled `FaultEvent` and returns a `FaultRecord` saying when it fired, what
it touched and whether it worked. Process faults and resets are serialised by one lock (a reset
restarts the workers itself); ecosystem and clock faults overlap freely and undo themselves after
their duration.

A Temporal reset discards every transition after the reset point, but decision records already
delivered to the JSONL sink for those transitions would then fork the chain. Like an operator
rolling BUBBLE back with the workflow, the reset injector stops the workers, resets, moves the
sink's records past the reset point to `<project>.jsonl.reset-<n>` (kept as evidence) and starts
the workers again (their sink caches start fresh).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType, ResetReapplyType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHistory

from swoosh.chaos.callers import Caller, Shared
from swoosh.chaos.schedule import FaultEvent
from swoosh.chaos.stack import Stack
from swoosh.workflows.answers import Accepted
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import request_snapshot
from swoosh.workflows.messages import ACTIVITY_DELIVER, UPDATE_TRANSITION, DeliveryRequest, LifecycleInput
from swoosh.workflows.replay.history import decode_histories

ET = EventType
RESET_WAIT_S = 20.0


@dataclass
class FaultRecord:
    """One fault as it happened."""

    kind: str
    scheduled_s: float
    started: float  # monotonic
    ended: float = 0.0
    ok: bool = True
    detail: str = ""
    projects: list[str] = field(default_factory=list)  # affected projects (recovery times are measured for them)


@dataclass(frozen=True)
class ResetMark:
    """A completed reset: the project, when it started, and the last index the new run keeps."""

    project_id: str
    at: float  # monotonic, when the workers were stopped for the reset
    done: float  # monotonic, when the workers polled again (no answer from the new run comes earlier)
    kept_index: int
    event_id: int
    old_run_id: str


def reset_points(history: WorkflowHistory) -> list[tuple[int, int]]:
    """(WorkflowTaskCompleted event id, index of the last transition applied by then) for one run."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    conv = pydantic_data_converter.payload_converter
    index = -1
    out: list[tuple[int, int]] = []
    transitions: set[int] = set()  # accepted events of `transition` Updates (a dry run applies nothing)
    for e in history.events:
        t = e.event_type
        if t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            start = conv.from_payloads(
                list(e.workflow_execution_started_event_attributes.input.payloads), [LifecycleInput]
            )[0]
            index = int(start.snapshot.document["meta"]["index"])
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            request = e.workflow_execution_update_accepted_event_attributes.accepted_request
            if request.input.name == UPDATE_TRANSITION:
                transitions.add(e.event_id)
        elif t == ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            completed = e.workflow_execution_update_completed_event_attributes
            outcome = completed.outcome
            if completed.accepted_event_id in transitions and outcome.HasField("success"):
                answer = conv.from_payloads(list(outcome.success.payloads), [Accepted])[0]
                index = max(index, answer.index)
        elif t == ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = e.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == ACTIVITY_DELIVER:
                delivery = conv.from_payloads(list(attrs.input.payloads), [DeliveryRequest])[0]
                index = max([index, *(int(r["index"]) for r in delivery.records)])
        elif t == ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            out.append((e.event_id, index))
    return out


def choose_reset_point(points: list[tuple[int, int]], back: int) -> tuple[int, int] | None:
    """The latest point whose index is at least `back` transitions before the run's last index."""
    if not points:
        return None
    last = points[-1][1]
    first = points[0][1]
    if last <= first:
        return None  # nothing was applied in this run: a reset would discard nothing
    target = max(first, last - back)
    eligible = [p for p in points if p[1] <= target]
    return eligible[-1] if eligible else points[0]


def rollback_sink(decisions_dir: Path, project_id: str, kept_index: int, tag: str) -> int:
    """Move the sink's records after `kept_index` to `<project>.jsonl.reset-<tag>`; returns how many moved."""
    import json

    path = decisions_dir / f"{project_id}.jsonl"
    if not path.exists():
        return 0
    keep: list[bytes] = []
    moved: list[bytes] = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        (moved if int(json.loads(line)["index"]) > kept_index else keep).append(line)
    if moved:
        (decisions_dir / f"{project_id}.jsonl.reset-{tag}").write_bytes(b"\n".join(moved) + b"\n")
        tmp = path.with_suffix(".jsonl.tmp")
        tmp.write_bytes(b"".join(line + b"\n" for line in keep))
        tmp.replace(path)
    return len(moved)


class Injector:
    """Fires scheduled faults against a running stack and its callers."""

    def __init__(
        self,
        stack: Stack,
        client: Client,
        callers: list[Caller],
        shared: Shared,
        sim: httpx.AsyncClient | None,
        t0: float,
    ) -> None:
        self.stack = stack
        self.client = client
        self.callers = callers
        self.shared = shared
        self.sim = sim
        self.t0 = t0
        self.process_lock = asyncio.Lock()
        self.records: list[FaultRecord] = []
        self.resets: list[ResetMark] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._license_faults = 0

    @property
    def projects(self) -> list[str]:
        return [c.project_id for c in self.callers]

    async def fire(self, ev: FaultEvent) -> FaultRecord:
        rec = FaultRecord(ev.kind, ev.at_s, time.monotonic())
        self.records.append(rec)
        try:
            handler = getattr(self, f"_{ev.kind}")
            await handler(ev, rec)
        except Exception as err:  # a fault that could not be injected is reported, never fatal to the run
            rec.ok = False
            rec.detail = f"{type(err).__name__}: {err}"[:300]
        if not rec.ended:
            rec.ended = time.monotonic()
        return rec

    def background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for timed faults to undo themselves."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ------------------------------------------------------------------ processes
    async def _worker_kill(self, ev: FaultEvent, rec: FaultRecord) -> None:
        i = ev.target or 0
        rec.projects = self.projects
        async with self.process_lock:
            await self.stack.kill_worker(i)
            await asyncio.sleep(ev.param("down_s", 1.0))
            await self.stack.start_worker(i)
        rec.detail = f"worker-{i} SIGKILLed and restarted"

    async def _api_restart(self, ev: FaultEvent, rec: FaultRecord) -> None:
        rec.projects = self.projects
        async with self.process_lock:
            await self.stack.restart_api(kill=bool(ev.param("kill")))
        rec.detail = "API " + ("SIGKILLed" if ev.param("kill") else "stopped") + " and restarted"

    async def _temporal_restart(self, ev: FaultEvent, rec: FaultRecord) -> None:
        rec.projects = self.projects
        async with self.process_lock:
            await self.stack.restart_temporal(kill=bool(ev.param("kill")), down_s=float(ev.param("down_s", 0.0)))
        rec.detail = (
            "dev server " + ("SIGKILLed" if ev.param("kill") else "stopped") + " and restarted on its SQLite file"
        )

    # ------------------------------------------------------------------ workflows
    async def _snapshot(self, ev: FaultEvent, rec: FaultRecord) -> None:
        project = self.projects[(ev.target or 0) % len(self.projects)]
        rec.projects = [project]
        await request_snapshot(self.client, project)
        rec.detail = f"snapshot signal to {project}"

    async def _reset(self, ev: FaultEvent, rec: FaultRecord) -> None:
        caller = self.callers[(ev.target or 0) % len(self.callers)]
        project = caller.project_id
        rec.projects = [project]
        wid = workflow_id(project)
        deadline = time.monotonic() + RESET_WAIT_S
        while True:
            async with self.process_lock:
                desc = await self.client.get_workflow_handle(wid).describe()
                history = await self.client.get_workflow_handle(wid, run_id=desc.run_id).fetch_history()
                await decode_histories([history], self.client.data_converter.payload_codec)
                point = choose_reset_point(reset_points(history), int(ev.param("back", 1)))
                if point is not None:
                    await self._reset_to(caller, rec, desc.run_id, point)
                    return
            if time.monotonic() > deadline:
                rec.detail = f"{project}: nothing applied in the current run for {RESET_WAIT_S:.0f}s; reset skipped"
                rec.ok = False
                return
            await asyncio.sleep(1.0)  # a snapshot just started a new run: wait for a transition in it

    async def _reset_to(self, caller: Caller, rec: FaultRecord, run_id: str, point: tuple[int, int]) -> None:
        """Stop the workers, reset the run to `point`, roll the sink back, start the workers (lock held)."""
        project = caller.project_id
        wid = workflow_id(project)
        event_id, kept = point
        running = [i for i in range(self.stack.n_workers) if self.stack.worker_running(i)]
        at = time.monotonic()
        for i in running:
            await self.stack.kill_worker(i)
        moved = 0
        reset_ok = False
        try:
            await self.client.workflow_service.reset_workflow_execution(
                ResetWorkflowExecutionRequest(
                    namespace=self.client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=wid, run_id=run_id),
                    reason="swoosh chaos: forced snapshot rollback",
                    workflow_task_finish_event_id=event_id,
                    request_id=str(uuid.uuid4()),
                    reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
                    # Updates after the point are discarded (their callers resend); signals are re-applied.
                    reset_reapply_exclude_types=[ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE],
                )
            )
            reset_ok = True
            caller.note_reset()
            moved = rollback_sink(self.stack.decisions_dir, project, kept, str(len(self.resets) + 1))
        finally:
            for i in running:
                await self.stack.start_worker(i)
            if reset_ok:
                self.resets.append(ResetMark(project, at, time.monotonic(), kept, event_id, run_id))
        rec.detail = f"{project} reset to event {event_id} (index {kept}); {moved} sink record(s) rolled back"

    # ------------------------------------------------------------------ ecosystem (simulator)
    async def _set_faults(self, family: str, faults: dict[str, Any]) -> None:
        if self.sim is None:
            raise RuntimeError("no simulator in this stack")
        (await self.sim.put(f"/admin/faults/{family}", json=faults)).raise_for_status()

    async def _timed(self, rec: FaultRecord, duration: float, undo: Any) -> None:
        async def later() -> None:
            await asyncio.sleep(duration)
            try:
                await undo()
            finally:
                rec.ended = time.monotonic()

        self.background(later())

    async def _license_fault(self, ev: FaultEvent, rec: FaultRecord, faults: dict[str, Any], trouble: bool) -> None:
        rec.projects = self.projects
        await self._set_faults("license", faults)
        self._license_faults += 1
        if trouble:
            self.shared.license_trouble = True
            for c in self.callers:
                c.license_attempted = False

        async def undo() -> None:
            self._license_faults -= 1
            if self._license_faults == 0:
                await self._set_faults("license", {})
                self.shared.license_trouble = False

        await self._timed(rec, ev.duration_s, undo)
        rec.detail = f"licence {faults} for {ev.duration_s}s"
        rec.ended = -1.0  # set by undo

    async def _license_latency(self, ev: FaultEvent, rec: FaultRecord) -> None:
        await self._license_fault(ev, rec, {"latency_ms": int(ev.param("latency_ms", 500))}, trouble=False)

    async def _license_deny(self, ev: FaultEvent, rec: FaultRecord) -> None:
        await self._license_fault(ev, rec, {"deny": True}, trouble=False)

    async def _license_throttle(self, ev: FaultEvent, rec: FaultRecord) -> None:
        await self._license_fault(ev, rec, {"throttle": True}, trouble=True)

    async def _mcp_flap(self, ev: FaultEvent, rec: FaultRecord) -> None:
        rec.projects = self.projects
        await self._set_faults("mcp", {"flap_every": int(ev.param("flap_every", 1))})
        churn = bool(ev.param("tool_churn"))
        if churn and self.sim is not None:
            (
                await self.sim.put("/admin/tools", json={"ucxl.resolve": "1.1.0", "bubble.emit": "1.0.0"})
            ).raise_for_status()

        async def undo() -> None:
            await self._set_faults("mcp", {})
            if churn and self.sim is not None:
                tools = {"ucxl.resolve": "1.0.0", "bubble.emit": "1.0.0"}
                (await self.sim.put("/admin/tools", json=tools)).raise_for_status()

        await self._timed(rec, ev.duration_s, undo)
        rec.detail = f"MCP flapping every {ev.param('flap_every')} request(s){' + tool churn' if churn else ''}"
        rec.ended = -1.0

    async def _capacity_churn(self, ev: FaultEvent, rec: FaultRecord) -> None:
        caller = self.callers[(ev.target or 0) % len(self.callers)]
        rec.projects = [caller.project_id]
        caller.churn_pending = True  # the caller re-provisions its environment (through RECOVERY when executing)
        if self.sim is not None:
            (await self.sim.put("/admin/backbeat", json={"pressure": int(ev.param("pressure", 70))})).raise_for_status()

            async def undo() -> None:
                assert self.sim is not None
                (await self.sim.put("/admin/backbeat", json={"pressure": 0})).raise_for_status()

            await self._timed(rec, ev.duration_s, undo)
            rec.ended = -1.0
        rec.detail = f"{caller.project_id}: environment capacity churn, BACKBEAT pressure {ev.param('pressure')}"

    async def _provider_hang(self, ev: FaultEvent, rec: FaultRecord) -> None:
        """BACKBEAT answers only after `latency_ms`: longer than the guard activity's every attempt.

        Every decision with a guard reads the beat (its cache refreshes each second), so while this
        lasts the guard activity fails after its retries: Updates are answered 503
        `guards_unavailable`, and no project's workflow may fail because of it.
        """
        rec.projects = self.projects
        await self._set_faults("backbeat", {"latency_ms": int(ev.param("latency_ms", 15_000))})

        async def undo() -> None:
            await self._set_faults("backbeat", {})

        await self._timed(rec, ev.duration_s, undo)
        rec.detail = f"BACKBEAT held {ev.param('latency_ms')} ms per request for {ev.duration_s}s"
        rec.ended = -1.0

    async def _clock_skew(self, ev: FaultEvent, rec: FaultRecord) -> None:
        caller = self.callers[(ev.target or 0) % len(self.callers)]
        rec.projects = [caller.project_id]
        caller.skew_ms = int(ev.param("skew_ms", 0))

        async def undo() -> None:
            caller.skew_ms = 0

        await self._timed(rec, ev.duration_s, undo)
        rec.detail = f"{caller.project_id}: caller clock skewed {caller.skew_ms} ms"
        rec.ended = -1.0

    async def clear_ecosystem(self) -> None:
        if self.sim is not None:
            (await self.sim.delete("/admin/faults")).raise_for_status()
            (
                await self.sim.put("/admin/tools", json={"ucxl.resolve": "1.0.0", "bubble.emit": "1.0.0"})
            ).raise_for_status()
            (await self.sim.put("/admin/backbeat", json={"pressure": 0})).raise_for_status()
        self.shared.license_trouble = False
        for c in self.callers:
            c.skew_ms = 0


__all__ = ["FaultRecord", "Injector", "ResetMark", "choose_reset_point", "reset_points", "rollback_sink"]
