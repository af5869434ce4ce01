"""`ProjectLifecycle`: one deterministic Temporal workflow per project.

Temporal history is the write-ahead log; continue-as-new carries the snapshot. Transitions arrive as
the `transition` Update (synchronous answer) or the `propose` Signal (fire-and-forget); both go
through `_decide`. Everything that can be decided without facts is decided in the Update validator,
so those rejections write nothing to history; guards over facts run in a local activity.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from guards.context import GuardContext
    from guards.outcome import GuardOutcome, failed
    from guards.policy import BUILTIN_RULES, scan
    from workflows.answers import Accepted, GuardResult, Rejected
    from workflows.canonical import canonical_json
    from workflows.document import phases, validate_document
    from workflows.engine import Admitted, Engine
    from workflows.errors import ProposalError
    from workflows.messages import (
        ACTIVITY_DELIVER,
        ACTIVITY_GUARDS,
        QUERY_DECISIONS,
        QUERY_HEAD,
        QUERY_HEALTH,
        QUERY_REJECTIONS,
        QUERY_STATE,
        REJECTION_ERROR_TYPE,
        RETRY_LATER_ERROR_TYPE,
        SIGNAL_PROPOSE,
        SIGNAL_SNAPSHOT,
        UPDATE_TRANSITION,
        WORKFLOW_NAME,
        DecisionsPage,
        DeliveryRequest,
        DeliveryResult,
        GuardRequest,
        GuardResponse,
        HeadView,
        HealthView,
        LifecycleInput,
        RejectionLogEntry,
        StateView,
    )
    from workflows.proposal import ProposalRequest
    from workflows.statechart import SECTIONS, default_statechart

    CHART = default_statechart()

SA_TOP = SearchAttributeKey.for_keyword("SwooshTop")
SA_INGESTION = SearchAttributeKey.for_keyword("SwooshIngestion")
SA_COUNCIL = SearchAttributeKey.for_keyword("SwooshCouncil")
SA_ENVIRONMENT = SearchAttributeKey.for_keyword("SwooshEnvironment")
SA_EXECUTION = SearchAttributeKey.for_keyword("SwooshExecution")
SA_QUARANTINED = SearchAttributeKey.for_bool("SwooshQuarantined")
SA_INDEX = SearchAttributeKey.for_int("SwooshIndex")
PATCH_REVERB_SNAPSHOT_MIN = "reverb-snapshot-min"
PATCH_RECORD_BYTES = "decision-record-byte-limits"
# Reasons can quote a caller's text (a malformed hlc, say); a signal's body may be megabytes.
REJECTION_REASON_CHARS = 1000
SEARCH_ATTRIBUTES = (SA_TOP, SA_INGESTION, SA_COUNCIL, SA_ENVIRONMENT, SA_EXECUTION, SA_QUARANTINED, SA_INDEX)

GUARD_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=3, backoff_coefficient=2.0)
DELIVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)


def search_attributes_of(doc: dict[str, Any]) -> TypedSearchAttributes:
    """The typed search attributes describing a document (for start and for upserts)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TOP, doc["control"]["top"]),
            SearchAttributePair(SA_INGESTION, doc["ingestion"]["phase"] or "-"),
            SearchAttributePair(SA_COUNCIL, doc["council"]["phase"] or "-"),
            SearchAttributePair(SA_ENVIRONMENT, doc["environment"]["phase"] or "-"),
            SearchAttributePair(SA_EXECUTION, doc["execution"]["phase"] or "-"),
            SearchAttributePair(SA_QUARANTINED, bool(doc["policy"]["quarantined"])),
            SearchAttributePair(SA_INDEX, int(doc["meta"]["index"])),
        ]
    )


def rejection_error(rejected: Rejected) -> ApplicationError:
    """The Update failure that carries a contract rejection (the API maps it to a 400)."""
    return ApplicationError(
        f"{rejected.error}: {rejected.reason}",
        rejected.model_dump(mode="json"),
        type=REJECTION_ERROR_TYPE,
        non_retryable=True,
    )


@workflow.defn(name=WORKFLOW_NAME)
class ProjectLifecycle:
    @workflow.init
    def __init__(self, inp: LifecycleInput) -> None:
        self.settings = inp.settings
        validate_document(inp.snapshot.document)  # a malformed snapshot fails here, loudly, not later
        self.engine = Engine(CHART, inp.snapshot)
        self.lock = asyncio.Lock()
        self.inbox: list[ProposalRequest] = list(inp.inbox)
        self.undelivered: list[dict[str, Any]] = list(inp.undelivered)
        self.retained: deque[dict[str, Any]] = deque(inp.retained, maxlen=self.settings.dr_retain)
        self.rejections: deque[RejectionLogEntry] = deque(inp.rejections, maxlen=self.settings.rejection_log)
        self.snapshot_index = inp.snapshot_index
        self.snapshot_hlc = inp.snapshot_hlc
        self.runs = inp.runs
        self.delivered_index = min((int(r["index"]) for r in self.undelivered), default=self.engine.index + 1) - 1
        self.snapshot_wanted = False
        self.draining = False
        self.pump_state = "idle"
        self.published_index = -1
        self.fence: tuple[int, int] | None = None  # the workflow task in which background code last ran
        self.seen = (0, 0)  # (history length, task time) of the latest activation our code ran in
        self.catch_up_at: int | None = None  # task time of a catch-up activation not yet followed by a new task
        # Runs recorded before the REVERB snapshot minimum existed snapshot at every REVERB. Asked once,
        # as each run starts (before any handler), so that their histories replay unchanged.
        self.reverb_min = inp.settings.reverb_snapshot_min if workflow.patched(PATCH_REVERB_SNAPSHOT_MIN) else 1
        # Delivery batches and retained records limited in bytes too (see LifecycleSettings); runs
        # recorded before keep their count-only batches on replay.
        self.byte_limits = workflow.patched(PATCH_RECORD_BYTES)
        self.record_sizes: dict[int, int] = {}  # decision-record index -> canonical JSON bytes (a memo)
        meter = workflow.metric_meter()
        self.m_transitions = meter.create_counter("swoosh_transition_total", "accepted transitions")
        self.m_guard_fail = meter.create_counter("swoosh_guard_fail_total", "guard failures")
        self.m_quarantine = meter.create_counter("swoosh_quarantine_total", "projects quarantined")

    # ------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, inp: LifecycleInput) -> None:
        self._describe()
        self.pump = asyncio.create_task(self._deliver_loop())  # kept referenced; never cancelled
        self._resumed()
        while True:
            await self._quiet()
            self._resumed()
            armed = self._grace_deadline()

            def work_or_timer_changed(armed: int | None = armed) -> bool:
                # Checked in every activation after its Updates were validated: lifts a catch-up
                # fence as soon as a later task shows up, even if nothing else runs in it.
                self._observe()
                changed = bool(self.inbox) or self._snapshot_due() or self._grace_deadline() != armed
                return changed and workflow.all_handlers_finished()

            try:
                await workflow.wait_condition(
                    work_or_timer_changed,
                    timeout=self._until(armed),
                    timeout_summary="licence grace expiry",
                )
            except TimeoutError:
                pass
            self._resumed()
            await self._quiet()  # the timer may have fired in the same task as incoming Updates
            self._resumed()
            await self._fire_timers()
            while self.inbox and not self._snapshot_due():
                await self._process_signal(self.inbox.pop(0))
            if self._snapshot_due():
                self.draining = True
                # Continue-as-new only from here, after every handler finished (never from a handler),
                # and not while the delivery pump is leaving a flush wait: continue-as-new must be the
                # last command, so nothing may follow it. An in-flight delivery is simply abandoned;
                # its records ride along in the snapshot and the sink is idempotent.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and self.pump_state != "flushing"
                )
                self._resumed()
                workflow.continue_as_new(self._next_input())

    async def _quiet(self) -> None:
        """Wait until no Update handler is in flight.

        Determinism rule: code outside the Update handlers (this run loop, the delivery pump) emits
        commands only at such quiet points. After a workflow task times out (a worker killed
        mid-task), replay may order an Update's acceptance differently against a timer firing or an
        activity completing in the same task (seen in chaos runs; cf. sdk-rust #943). At a quiet
        point every handler of the task has already produced its commands, so what the background
        code emits next cannot depend on that order.
        """
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self.draining)

    def _task_key(self) -> tuple[int, int]:
        return workflow.info().get_current_history_length(), self._now_ms()

    def _resumed(self) -> None:
        """Background code (run loop, delivery pump) is about to act: fence off this workflow task.

        The second determinism rule. The SDK core can hand the workflow a timer firing or an
        activity completing in one activation and an Update that belongs to the same workflow task in
        a later one, while a replay of the same history delivers both in one activation, where the
        Update runs first. If background code emitted commands in between, live and replay disagree
        on the order of commands and the history no longer replays ("Update machine does not handle
        this event: UpsertWorkflowSearchAttributes"; seen in full chaos runs). The split shows up in
        two forms:

        * within one workflow task (same history length or same task time), and
        * after a *catch-up*: a query reaching a worker without the workflow in cache makes the core
          apply the history up to the latest event, including a timer that fired while the task was
          still waiting to start. That activation keeps the previous task's time although history has
          grown, and its commands are sent with the next real task, ahead of that task's Updates.

        In both cases an Update validated afterwards, before the next real task's background code
        ran, is turned away with a retry-later error: nothing is written, the caller resends, and it
        is taken in a later task. Updates validated before background code runs in an activation (the
        normal case: the SDK applies them first) are unaffected, and replay never runs validators.
        """
        self._observe()
        self.fence = self._task_key()

    def _observe(self) -> None:
        """Note the activation our code runs in; spot catch-up activations (live-only effect: validator)."""
        length, now_ms = self._task_key()
        seen_length, seen_now = self.seen
        if now_ms == seen_now and length > seen_length:
            self.catch_up_at = now_ms  # history grew, yet no new workflow task started
        elif self.catch_up_at is not None and now_ms > self.catch_up_at:
            self.catch_up_at = None  # a real task followed; its Updates were validated before this point
        self.seen = (max(length, seen_length), now_ms)

    def _fenced(self) -> bool:
        if self.catch_up_at is not None:
            return True
        if self.fence is None:
            return False
        length, now_ms = self._task_key()
        # Either component identifies the task: history length changes with every task, the task's
        # start time may not (two tasks in one millisecond); a false positive only costs a resend.
        return self.fence[0] == length or self.fence[1] == now_ms

    def _snapshot_due(self) -> bool:
        if self.engine.top == "TERMINATED" and not self.snapshot_wanted:
            return False
        accepted = self.engine.index - self.snapshot_index
        return (
            self.snapshot_wanted
            or accepted >= self.settings.snapshot_every
            or (accepted > 0 and workflow.info().is_continue_as_new_suggested())
        )

    def _next_input(self) -> LifecycleInput:
        return LifecycleInput(
            snapshot=self.engine.snapshot(),
            settings=self.settings,
            undelivered=self.undelivered,
            retained=list(self.retained),
            inbox=self.inbox,
            rejections=list(self.rejections),
            snapshot_index=self.engine.index,
            snapshot_hlc=self.engine.document["hlc_last"],
            runs=self.runs + 1,
        )

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _grace_deadline(self) -> int | None:
        lic = self.engine.document["control"]["license"]
        return lic["grace_deadline_ms"] if lic["phase"] == "DEGRADED_GRACE" else None

    def _until(self, deadline_ms: int | None) -> timedelta | None:
        if deadline_ms is None:
            return None
        return timedelta(milliseconds=max(1, deadline_ms - self._now_ms()))

    async def _fire_timers(self) -> None:
        lic = self.engine.document["control"]["license"]
        if lic["phase"] == "DEGRADED_GRACE" and lic["grace_deadline_ms"] is not None:
            if self._now_ms() >= lic["grace_deadline_ms"]:
                async with self.lock:
                    if self.engine.document["control"]["license"]["phase"] == "DEGRADED_GRACE":
                        self._system("License_GraceExpired", {})

    # ------------------------------------------------------------------ transitions
    @workflow.update(name=UPDATE_TRANSITION)
    async def transition(self, req: ProposalRequest) -> Accepted:
        self._observe()
        async with self.lock:  # handlers await activities: serialise, then re-check the head inside
            return await self._decide(req)

    @transition.validator
    def validate_transition(self, req: ProposalRequest) -> None:
        """Reject what is decidable now, so those rejections write nothing to history."""
        if self._fenced():
            raise ApplicationError(
                "the project is busy recovering a workflow task; resend the same proposal",
                type=RETRY_LATER_ERROR_TYPE,
                non_retryable=True,
            )
        try:
            admitted = self.engine.admit(req, self._now_ms())
        except ProposalError as err:
            raise rejection_error(Rejected.of(err, self.engine.head_hash)) from None
        if isinstance(admitted, Admitted):
            backlog, size = len(self.undelivered), self._bytes(self.undelivered)
            if backlog >= self.settings.dr_backlog_max or size >= self.settings.dr_backlog_bytes:
                # Back-pressure, not loss: duplicates and rejections are still answered.
                raise ApplicationError(
                    f"the decision-record sink is behind ({backlog} records, {size // 1024} KiB not yet "
                    "delivered); resend later",
                    type=RETRY_LATER_ERROR_TYPE,
                    non_retryable=True,
                )

    @workflow.signal(name=SIGNAL_PROPOSE)
    def propose(self, req: ProposalRequest) -> None:
        """Fire-and-forget path: queued, decided by the run loop; rejections go to the rejection log."""
        self.inbox.append(req)

    @workflow.signal(name=SIGNAL_SNAPSHOT)
    def request_snapshot(self) -> None:
        """Operator-forced snapshot: continue-as-new at the next safe point."""
        self.snapshot_wanted = True

    async def _process_signal(self, req: ProposalRequest) -> None:
        async with self.lock:
            try:
                await self._decide(req)
            except ApplicationError as err:
                if err.type != REJECTION_ERROR_TYPE:
                    raise
                rejected = Rejected.model_validate(err.details[0])
                body = req.body if isinstance(req.body, dict) else {}
                self.rejections.append(
                    RejectionLogEntry(
                        idem_key=_clip(body.get("idem_key") or req.header_fields.get("idem_key"), 256),
                        transition=_clip(body.get("transition"), 64),
                        error=rejected.error,
                        reason=_clip(rejected.reason, REJECTION_REASON_CHARS) or "",
                        failing_guard=rejected.failing_guard,
                        at_index=self.engine.index,
                    )
                )

    async def _decide(self, req: ProposalRequest) -> Accepted:
        try:
            admitted = self.engine.admit(req, self._now_ms())
        except ProposalError as err:
            raise rejection_error(Rejected.of(err, self.engine.head_hash)) from None
        if isinstance(admitted, Accepted):
            return admitted
        breaches = scan(BUILTIN_RULES, admitted.proposal.inputs, admitted.proposal.evidence)
        if breaches:
            outcome = failed("policy", *(f"breach: {b}" for b in breaches))
            self._quarantine_for(outcome)
            breach = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
            raise rejection_error(Rejected.of(breach, self.engine.head_hash, [_result(outcome)]))
        outcomes = await self._run_guards(admitted)
        try:
            answer, record = self.engine.apply(admitted, outcomes, self._now_ms())
        except ProposalError as err:
            if err.code == "guard_failed":
                self.m_guard_fail.with_additional_attributes({"guard": err.failing_guard or "?"}).add(1)
                if err.failing_guard == "policy":
                    self._quarantine_for(next(o for o in outcomes if o.guard == "policy"))
            raise rejection_error(Rejected.of(err, self.engine.head_hash, [_result(o) for o in outcomes])) from None
        if record:
            self._accepted(answer, record, admitted.transition.spec.snapshot)
        return answer

    async def _run_guards(self, admitted: Admitted) -> list[GuardOutcome]:
        spec = admitted.transition.spec
        if not spec.guards:
            return []
        p = admitted.proposal
        request = GuardRequest(
            guards=list(spec.guards),
            state=self.engine.document,
            inputs=p.inputs,
            context=GuardContext(
                project_id=self.engine.project_id,
                transition=spec.name,
                signer=p.signer,
                window_id=p.window_id,
                window_class=spec.window,
                evidence=tuple(p.evidence),
            ),
            now_ms=self._now_ms(),
        )
        response = await workflow.execute_local_activity(
            ACTIVITY_GUARDS,
            request,
            result_type=GuardResponse,
            start_to_close_timeout=timedelta(milliseconds=self.settings.guard_timeout_ms),
            retry_policy=GUARD_RETRY,
            summary=f"guards {', '.join(spec.guards)} for {spec.name}",
        )
        return list(response.outcomes)

    def _system(self, name: str, inputs: dict[str, Any]) -> Accepted:
        answer, record = self.engine.apply_system(name, inputs, self._now_ms())
        self._accepted(answer, record, False)
        return answer

    def _quarantine_for(self, outcome: GuardOutcome) -> None:
        if self.engine.top in ("QUARANTINED", "TERMINATED"):
            return
        rationale = "SHHH policy breach: " + "; ".join(outcome.reasons)
        try:
            self._system("Policy_Quarantine", {"reason": rationale[:4096]})
        except ProposalError:
            return  # not quarantinable from here (e.g. already leaving); the rejection still stands
        self.m_quarantine.add(1)

    def _accepted(self, answer: Accepted, record: dict[str, Any], snapshot_point: bool) -> None:
        self.undelivered.append(record)
        self.retained.append(record)
        if self.byte_limits:
            retained = self._bytes(self.retained)
            while len(self.retained) > 1 and retained > self.settings.dr_retain_bytes:
                retained -= self._size(self.retained.popleft())  # older records: from the sink
        self.m_transitions.with_additional_attributes({"transition": answer.transition}).add(1)
        if snapshot_point and self.engine.index - self.snapshot_index >= self.reverb_min:
            self.snapshot_wanted = True
        self._describe()

    def _describe(self) -> None:
        doc = self.engine.document
        ph = phases(doc)
        workflow.set_current_details(
            f"**{ph['top']}** · index {self.engine.index} · head `{self.engine.head_hash[:19]}…`\n\n"
            f"ingestion {ph['ingestion']} · council {ph['council']} · environment {ph['environment']} · "
            f"execution {ph['execution']} · licence {ph['license']}\n\n"
            f"run {self.runs} (snapshot at index {self.snapshot_index}) · undelivered records {len(self.undelivered)}"
        )

    # ------------------------------------------------------------------ decision-record delivery
    def _size(self, record: dict[str, Any]) -> int:
        index = int(record["index"])
        size = self.record_sizes.get(index)
        if size is None:
            size = self.record_sizes[index] = len(canonical_json(record))
        return size

    def _bytes(self, records: Iterable[dict[str, Any]]) -> int:
        return sum(self._size(r) for r in records)

    def _batch(self) -> list[dict[str, Any]]:
        """The next delivery: the oldest undelivered records, at most dr_batch and dr_batch_bytes (at least one)."""
        s = self.settings
        if not self.byte_limits:
            return self.undelivered[: s.dr_batch]
        batch: list[dict[str, Any]] = []
        total = 0
        for record in self.undelivered[: s.dr_batch]:
            total += self._size(record)
            if batch and total > s.dr_batch_bytes:
                break
            batch.append(record)
        return batch

    def _batch_full(self) -> bool:
        s = self.settings
        if len(self.undelivered) >= s.dr_batch:
            return True
        return self.byte_limits and self._bytes(self.undelivered) >= s.dr_batch_bytes

    async def _deliver_loop(self) -> None:
        s = self.settings
        while True:
            self.pump_state = "idle"
            await workflow.wait_condition(
                lambda: bool(self.undelivered) and not self.draining and workflow.all_handlers_finished()
            )
            self._resumed()
            if not self._batch_full() and s.dr_flush_ms > 0:
                self.pump_state = "flushing"
                try:
                    await workflow.wait_condition(
                        lambda: (self._batch_full() and workflow.all_handlers_finished()) or self.draining,
                        timeout=timedelta(milliseconds=s.dr_flush_ms),
                        timeout_summary="decision-record flush",
                    )
                except TimeoutError:
                    pass
                self._resumed()
                self.pump_state = "idle"
                await self._quiet()  # the flush timer may have fired alongside incoming Updates
                self._resumed()
            if self.draining:
                continue
            self._publish_search_attributes()
            batch = self._batch()
            self.pump_state = "delivering"
            try:
                result = await workflow.execute_activity(
                    ACTIVITY_DELIVER,
                    DeliveryRequest(project_id=self.engine.project_id, records=batch),
                    result_type=DeliveryResult,
                    start_to_close_timeout=timedelta(milliseconds=s.deliver_timeout_ms),
                    retry_policy=DELIVER_RETRY,
                    summary=f"deliver {len(batch)} decision record(s) up to index {batch[-1]['index']}",
                )
            except ActivityError:
                self._resumed()
                self.pump_state = "idle"
                await self._quiet()
                self._resumed()
                if self.draining:
                    continue  # no new command may follow continue-as-new
                self.pump_state = "backoff"
                await workflow.sleep(timedelta(seconds=30), summary="decision-record sink unavailable; retry")
                self._resumed()
                continue
            self._resumed()
            delivered = {r["index"] for r in batch}
            self.undelivered = [r for r in self.undelivered if r["index"] not in delivered]
            self.delivered_index = max(self.delivered_index, result.last_index)
            self._describe()

    def _publish_search_attributes(self) -> None:
        if self.published_index == self.engine.index:
            return
        attrs = search_attributes_of(self.engine.document)
        workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in attrs.search_attributes])
        self.published_index = self.engine.index

    # ------------------------------------------------------------------ queries
    @workflow.query(name=QUERY_STATE)
    def state(self, projection: list[str] | None = None) -> StateView:
        doc = self.engine.document
        if projection:
            wanted = {p.strip().lower() for p in projection if p.strip()}
            unknown = sorted(wanted - set(SECTIONS))
            if unknown:
                raise ValueError(
                    f"unknown projection section(s): {', '.join(unknown)}; sections are {', '.join(SECTIONS)}"
                )
            shown = {k: doc[k] for k in SECTIONS if k in wanted}
        else:
            shown = doc
        return StateView(
            project_id=self.engine.project_id,
            hash=self.engine.head_hash,
            index=self.engine.index,
            hlc_last=doc["hlc_last"],
            phase={k: v for k, v in phases(doc).items() if k != "license"},
            projection=shown,
        )

    @workflow.query(name=QUERY_HEAD)
    def head(self) -> HeadView:
        doc = self.engine.document
        return HeadView(
            project_id=self.engine.project_id,
            hash=self.engine.head_hash,
            index=self.engine.index,
            hlc_last=doc["hlc_last"],
            top=self.engine.top,
        )

    @workflow.query(name=QUERY_HEALTH)
    def health(self) -> HealthView:
        doc = self.engine.document
        top = self.engine.top
        lic = doc["control"]["license"]["phase"]
        lag = self.engine.index - self.snapshot_index
        if top == "TERMINATED":
            status = "down"
        elif top in ("QUARANTINED", "RECOVERY") or lic != "OK" or len(self.undelivered) > 4 * self.settings.dr_batch:
            status = "degraded"
        else:
            status = "ok"
        info = workflow.info()
        return HealthView(
            status=status,
            consensus={"mode": "temporal-single-writer", "workflow_id": info.workflow_id, "run_id": info.run_id},
            lastSnapshotHLC=self.snapshot_hlc,
            walLag=lag,
            index=self.engine.index,
            undelivered=len(self.undelivered),
            delivered_index=self.delivered_index,
            inbox=len(self.inbox),
            runs=self.runs,
            top=top,
            license=lic,
            quarantined=bool(doc["policy"]["quarantined"]),
        )

    @workflow.query(name=QUERY_DECISIONS)
    def decisions(self, after_index: int = 0, limit: int = 100) -> DecisionsPage:
        records = [r for r in self.retained if r["index"] > after_index][: max(0, min(limit, 1000))]
        return DecisionsPage(
            project_id=self.engine.project_id,
            records=records,
            first_retained_index=self.retained[0]["index"] if self.retained else None,
            head_index=self.engine.index,
        )

    @workflow.query(name=QUERY_REJECTIONS)
    def rejection_log(self) -> list[RejectionLogEntry]:
        return list(self.rejections)


def _result(o: GuardOutcome) -> GuardResult:
    return GuardResult(guard=o.guard, ok=o.ok, reasons=list(o.reasons))


def _clip(v: object, limit: int) -> str | None:
    """A caller's string, cut to `limit` characters: the rejection log rides in every snapshot."""
    if not isinstance(v, str):
        return None
    return v if len(v) <= limit else v[: limit - 1] + "…"
