"""`ProjectLifecycle`: one deterministic Temporal workflow per project.

Temporal history is the write-ahead log; continue-as-new carries the snapshot. Transitions arrive as
the `transition` Update (synchronous answer) or the `propose` Signal (fire-and-forget); both go
through `_decide`. Everything that can be decided without facts is decided in the Update validator,
so those rejections write nothing to history; guards over facts run in a local activity.

The class conducts: the pure engine decides, the outbox holds decision records, the delivery pump
sends them, the task fence keeps live runs and replays in step.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from opentelemetry import trace
    from opentelemetry.context import Context

    from swoosh.workflows.answers import Accepted, DryRunAnswer, IdemEntry, Rejected
    from swoosh.workflows.document import validate_document
    from swoosh.workflows.engine import Engine
    from swoosh.workflows.lifecycle import views
    from swoosh.workflows.lifecycle.decider import Decider, grace_deadline, now_ms, until
    from swoosh.workflows.lifecycle.delivery import DeliveryPump, PumpState
    from swoosh.workflows.lifecycle.fence import TaskFence, TaskKey
    from swoosh.workflows.lifecycle.guarding import (
        GuardsUnavailable,
        rejection_error,
        retry_later,
        unavailable,
    )
    from swoosh.workflows.lifecycle.inbox import INBOX_FULL, Inbox
    from swoosh.workflows.lifecycle.observe import ROOT, Observer
    from swoosh.workflows.lifecycle.outbox import Outbox
    from swoosh.workflows.lifecycle.receipts import ReceiptBook
    from swoosh.workflows.lifecycle.snapshots import SnapshotPolicy, next_input
    from swoosh.workflows.lifecycle.tuning import (
        PATCH_DELIVERY_CHECKED,
        PATCH_GUARD_CONTAINMENT,
        PATCH_INBOX_BYTES,
        PATCH_RECEIPTS,
        PATCH_RECORD_BYTES,
        PATCH_REVERB_SNAPSHOT_MIN,
        PATCH_SECRET_SCAN_IN_VALIDATOR,
        PATCH_TERMINATED_COMPLETES,
        QUARANTINE_RATIONALE_CHARS,
    )
    from swoosh.workflows.lifecycle.visibility import details
    from swoosh.workflows.limits import INBOX_BYTES
    from swoosh.workflows.messages import (
        QUERY_ANSWER,
        QUERY_DECISIONS,
        QUERY_HEAD,
        QUERY_HEALTH,
        QUERY_RECEIPTS,
        QUERY_REJECTIONS,
        QUERY_SEEN,
        QUERY_STATE,
        SIGNAL_PROPOSE,
        SIGNAL_SNAPSHOT,
        UNAVAILABLE_LOG_ERROR,
        WORKFLOW_NAME,
        AnswerView,
        DecisionsPage,
        HeadView,
        HealthView,
        LifecycleInput,
        RejectionLogEntry,
        SecretQuarantine,
        StateView,
    )
    from swoosh.workflows.proposal import ProposalRequest
    from swoosh.workflows.secrets import breach_outcome
    from swoosh.workflows.statechart import default_statechart

    CHART = default_statechart()


@workflow.defn(name=WORKFLOW_NAME)
class ProjectLifecycle:
    @workflow.init
    def __init__(self, inp: LifecycleInput) -> None:
        self.settings = inp.settings
        validate_document(inp.snapshot.document)  # a malformed snapshot fails here, loudly, not later
        self.engine = Engine(CHART, inp.snapshot)
        self.lock = asyncio.Lock()
        # The trace each queued signal arrived with (in memory only: signals from a snapshot start new traces).
        self.inbox_traces: list[Context | None] = [None] * len(inp.inbox)
        self.rejections = views.rejection_log(inp.rejections, self.settings.rejection_log)
        self.runs = inp.runs
        self.draining = False
        self.fence = TaskFence()
        # Runs recorded before the REVERB snapshot minimum existed snapshot at every REVERB; runs
        # recorded before byte limits cut delivery batches by count alone; runs recorded before the
        # store's acknowledgement was checked counted any answer as the whole batch delivered; runs
        # recorded before a TERMINATED project completed its workflow stayed open. Each asked once, in
        # this order, as each run starts (before any handler), so histories replay unchanged.
        reverb_min = inp.settings.reverb_snapshot_min if workflow.patched(PATCH_REVERB_SNAPSHOT_MIN) else 1
        self.snapshots = SnapshotPolicy(self.settings, inp.snapshot_index, inp.snapshot_hlc, reverb_min)
        byte_limits = workflow.patched(PATCH_RECORD_BYTES)
        checked = workflow.patched(PATCH_DELIVERY_CHECKED)
        # Runs recorded before snapshot receipts existed make none (and so deliver none).
        self.receipts = ReceiptBook(inp.receipts, inp.receipts_stored, enabled=workflow.patched(PATCH_RECEIPTS))
        self.completes = workflow.patched(PATCH_TERMINATED_COMPLETES)
        # Runs recorded before the inbox had a byte limit queue every signal.
        self.inbox = Inbox(inp.inbox, INBOX_BYTES if workflow.patched(PATCH_INBOX_BYTES) else None)
        self.scan_in_validator = workflow.patched(PATCH_SECRET_SCAN_IN_VALIDATOR)
        self.outbox = Outbox(self.settings, inp.undelivered, inp.retained, self.engine.index, byte_limits=byte_limits)
        # Spans, log lines and metrics: emitted once, never while replaying; no commands.
        self.observer = Observer(CHART, self.engine.project_id, inp.entered)
        self.decider = Decider(
            self.engine, self.settings, self.outbox, self.receipts, self.observer, self.snapshots, self.describe
        )
        refusal = inp.refusal if checked else None
        self.pump = DeliveryPump(
            self,
            self.engine,
            self.outbox,
            self.settings,
            self.observer,
            checked=checked,
            refusal=refusal,
            receipts=self.receipts,
        )

    # ------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, inp: LifecycleInput) -> None:
        self.describe()
        self.pump_task = asyncio.create_task(self.pump.run())  # kept referenced; never cancelled
        self.resumed()
        while True:
            await self.quiet()
            self.resumed()
            armed = grace_deadline(self.engine)

            def work_or_timer_changed(armed: int | None = armed) -> bool:
                # Checked in every activation after its Updates were validated: lifts a catch-up
                # fence as soon as a later task shows up, even if nothing else runs in it.
                self.fence.observe(self._task_key())
                changed = bool(self.inbox) or self.snapshots.due(self.engine) or grace_deadline(self.engine) != armed
                return (changed or self._finished()) and workflow.all_handlers_finished()

            try:
                await workflow.wait_condition(
                    work_or_timer_changed, timeout=until(armed), timeout_summary="licence grace expiry"
                )
            except TimeoutError:
                pass
            self.resumed()
            await self.quiet()  # the timer may have fired in the same task as incoming Updates
            self.resumed()
            await self._fire_timers()
            while self.inbox and not self.snapshots.due(self.engine):
                await self._process_signal(self.inbox.pop(), self.inbox_traces.pop(0))
            if self.snapshots.due(self.engine):
                self.draining = True
                # Continue-as-new only from here, after every handler finished (never from a handler),
                # and not while the delivery pump is leaving a flush wait: continue-as-new must be the
                # last command, so nothing may follow it. An in-flight delivery is simply abandoned;
                # its records ride along in the snapshot and the sink is idempotent.
                await workflow.wait_condition(
                    lambda: workflow.all_handlers_finished() and self.pump.state is not PumpState.FLUSHING
                )
                self.resumed()
                workflow.continue_as_new(self._next_input())
            if self._finished():
                # TERMINATED is final: with every record delivered the run completes, so the namespace's
                # retention applies. Queries still answer (a worker replays the closed run) and the
                # records stay in the store; the API refuses to start the project again. The last
                # interval gets its receipt first, as a snapshot would have made (the pump stores it).
                self.receipts.close_interval(self.engine.project_id)
                if not self.receipts.pending:
                    self.resumed()
                    self.describe()
                    return

    async def quiet(self) -> None:
        """Wait until no Update handler is in flight.

        Determinism rule: code outside the Update handlers (this run loop, the delivery pump) emits
        commands only at such quiet points. After a workflow task times out (a worker killed
        mid-task), replay may order an Update's acceptance differently against a timer firing or an
        activity completing in the same task (seen in chaos runs; cf. sdk-rust #943). At a quiet
        point every handler of the task has already produced its commands, so what the background
        code emits next cannot depend on that order.
        """
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self.draining)

    def resumed(self) -> None:
        """Background code (run loop, delivery pump) is about to act: fence off this workflow task."""
        self.fence.resume(self._task_key())

    def _task_key(self) -> TaskKey:
        return workflow.info().get_current_history_length(), now_ms()

    def _finished(self) -> bool:
        """The project is TERMINATED and nothing is left to do: no record to deliver, no signal, no handler."""
        return (
            self.completes
            and self.engine.top == "TERMINATED"
            and not self.snapshots.wanted
            and not self.inbox
            and not self.outbox.undelivered
            and not self.receipts.pending
            and self.pump.state is PumpState.IDLE
            and workflow.all_handlers_finished()
        )

    def _next_input(self) -> LifecycleInput:
        parts = (self.engine, self.settings, self.outbox, self.inbox, self.rejections, self.receipts)
        return next_input(*parts, runs=self.runs, refusal=self.pump.refusal, entered=self.observer.entered)

    async def _fire_timers(self) -> None:
        deadline = grace_deadline(self.engine)
        if deadline is not None and now_ms() >= deadline:
            async with self.lock:
                self.decider.expire_grace(parent=ROOT)

    def _fenced(self, what: str = "proposal") -> None:
        if self.fence.fenced(self._task_key()):
            raise retry_later(f"the project is busy recovering a workflow task; resend the same {what}")

    # ------------------------------------------------------------------ transitions
    # Named after the method (UPDATE_TRANSITION): the SDK types method references only for the bare decorator.
    @workflow.update
    async def transition(self, req: ProposalRequest) -> Accepted:
        self.fence.observe(self._task_key())
        async with self.lock:  # handlers await activities: serialise, then re-check the head inside
            try:
                answer = await self.decider.decide(req, scanned=self.scan_in_validator)
            except GuardsUnavailable as err:
                raise unavailable(err.reason) from None
        if isinstance(answer, Rejected):
            raise rejection_error(answer)
        return answer

    @transition.validator
    def validate_transition(self, req: ProposalRequest) -> None:
        """Reject what is decidable now, so those rejections write nothing to history."""
        self._fenced()
        self.decider.check(req)

    # Named after the method (UPDATE_DRY_RUN), as `transition` is, so method references are typed.
    @workflow.update
    async def dry_run(self, req: ProposalRequest) -> DryRunAnswer:
        """What a real send would be answered now, guards included; changes nothing.

        Only proposals that pass admission and have guards to run get here (the validator answers
        every other one without writing history): guards run in a local activity, which a query
        cannot start. The would-be post hash is computed on a copy of the engine.
        """
        self.fence.observe(self._task_key())
        self.snapshots.dry_runs += 1
        async with self.lock:  # the same head and the same facts a real send would be decided on
            return await self.decider.dry_run(req)

    @dry_run.validator
    def validate_dry_run(self, req: ProposalRequest) -> None:
        """Answer here, writing nothing, whenever no guard has to run."""
        self._fenced()
        self.decider.check_dry_run(req)

    # Named after the method (UPDATE_QUARANTINE), as `transition` is, so method references are typed.
    @workflow.update
    async def quarantine_for_secret(self, req: SecretQuarantine) -> HeadView:
        """Quarantine for a secret-bearing proposal refused before it was sent (the request names no secret).

        An Update, not a Signal, so the caller's 400 answer comes after the quarantine is in force; a
        resend finds the project QUARANTINED already and changes nothing.
        """
        self.fence.observe(self._task_key())
        async with self.lock:
            note = f"proposal {req.idem_key or '?'} ({req.transition or '?'}) by {req.signer or '?'}, never sent"
            self.decider.quarantine_for(breach_outcome(list(req.breaches)), note)
            self.rejections.append(views.refused_entry(req, self.engine.index, QUARANTINE_RATIONALE_CHARS))
        return views.head_view(self.engine)

    @quarantine_for_secret.validator
    def validate_quarantine_for_secret(self, req: SecretQuarantine) -> None:
        self._fenced("request")

    @workflow.signal(name=SIGNAL_PROPOSE)
    def propose(self, req: ProposalRequest) -> None:
        """Fire-and-forget path: queued, decided by the run loop; rejections go to the rejection log."""
        refused = self.inbox.offer(req)
        if refused is not None:
            self.rejections.append(views.log_entry(req, INBOX_FULL, refused, self.engine.index))
            return
        caller = trace.get_current_span().get_span_context()
        self.inbox_traces.append(trace.set_span_in_context(trace.NonRecordingSpan(caller)) if caller.is_valid else None)

    @workflow.signal(name=SIGNAL_SNAPSHOT)
    def request_snapshot(self) -> None:
        """Operator-forced snapshot: continue-as-new at the next safe point."""
        self.snapshots.wanted = True

    async def _process_signal(self, req: ProposalRequest, parent: Context | None) -> None:
        async with self.lock:
            try:
                answer = await self.decider.decide(req, parent or ROOT)
            except GuardsUnavailable as err:
                if not workflow.patched(PATCH_GUARD_CONTAINMENT):
                    raise err.failure from None  # recorded before: the workflow failed here
                self.rejections.append(views.log_entry(req, UNAVAILABLE_LOG_ERROR, err.reason, self.engine.index))
                return
        if isinstance(answer, Rejected):
            self.rejections.append(views.rejection_entry(req, answer, self.engine.index))

    def describe(self) -> None:
        """The workflow's current details in the Temporal UI, and the backlog gauges."""
        index, outbox = self.snapshots.index, self.outbox
        text = details(
            self.engine.document,
            self.engine.head_hash,
            self.runs,
            index,
            len(outbox.undelivered),
            self.settings.api_url,
        )
        workflow.set_current_details(text)
        self.observer.gauges(self.engine.index - index, len(outbox.undelivered), outbox.backlog_reason() is not None)

    # ------------------------------------------------------------------ queries
    @workflow.query(name=QUERY_STATE)
    def state(self, projection: list[str] | None = None) -> StateView:
        return views.state_view(self.engine, projection)

    @workflow.query(name=QUERY_HEAD)
    def head(self) -> HeadView:
        return views.head_view(self.engine)

    @workflow.query(name=QUERY_HEALTH)
    def health(self) -> HealthView:
        info = workflow.info()
        return views.health_view(
            self.engine,
            self.outbox,
            consensus={"mode": "temporal-single-writer", "workflow_id": info.workflow_id, "run_id": info.run_id},
            snapshot_index=self.snapshots.index,
            snapshot_hlc=self.snapshots.hlc,
            inbox=len(self.inbox),
            runs=self.runs,
            refusal=self.pump.refusal,
        )

    @workflow.query(name=QUERY_DECISIONS)
    def decisions(self, after_index: int = 0, limit: int = 100) -> DecisionsPage:
        return views.decisions_page(self.engine, self.outbox, after_index, limit)

    @workflow.query(name=QUERY_RECEIPTS)
    def receipt_log(self) -> list[dict[str, Any]]:
        """The newest stored snapshot receipts, then those still to be signed and stored."""
        return self.receipts.view()

    @workflow.query(name=QUERY_REJECTIONS)
    def rejection_log(self) -> list[RejectionLogEntry]:
        return list(self.rejections)

    @workflow.query(name=QUERY_ANSWER)
    def answer(self, req: ProposalRequest) -> AnswerView:
        """A proposal's answer from the state alone (admission only, nothing applied): for a closed run,
        which takes no Update but still answers a TERMINATED project's `terminated` and a resend's duplicate."""
        return views.answer_view(self.engine, req, now_ms())

    @workflow.query(name=QUERY_SEEN)
    def seen(self, idem_key: str) -> IdemEntry | None:
        """What the idempotency window remembers of `idem_key` (None: not applied, or older than the window)."""
        return self.engine.seen(idem_key)
