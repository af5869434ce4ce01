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
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from opentelemetry import trace
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from swoosh.guards.outcome import GuardOutcome, failed
    from swoosh.guards.policy import scan
    from swoosh.workflows.answers import Accepted, DryRunAnswer, GuardResult, IdemEntry, Rejected
    from swoosh.workflows.document import validate_document
    from swoosh.workflows.engine import Admitted, Engine
    from swoosh.workflows.errors import ProposalError
    from swoosh.workflows.lifecycle import views
    from swoosh.workflows.lifecycle.delivery import DeliveryPump, PumpState
    from swoosh.workflows.lifecycle.dryrun import dry_apply, dry_verdict
    from swoosh.workflows.lifecycle.fence import TaskFence, TaskKey
    from swoosh.workflows.lifecycle.guarding import (
        GuardsUnavailable,
        evaluate_guards,
        rejection_error,
        result_of,
        retry_later,
        unavailable,
    )
    from swoosh.workflows.lifecycle.inbox import INBOX_FULL, Inbox
    from swoosh.workflows.lifecycle.observe import ROOT, Observer
    from swoosh.workflows.lifecycle.outbox import Outbox
    from swoosh.workflows.lifecycle.receipts import ReceiptBook
    from swoosh.workflows.lifecycle.tuning import (
        PATCH_ADOPT_RULES,
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
        DRY_RUN_ANSWER_TYPE,
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
    from swoosh.workflows.secrets import breach_outcome, secret_breaches
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
        self.snapshot_index = inp.snapshot_index
        self.snapshot_hlc = inp.snapshot_hlc
        self.runs = inp.runs
        self.snapshot_wanted = False
        self.dry_runs = 0  # dry runs this run accepted as Updates: they count towards Temporal's Update limit
        self.draining = False
        self.fence = TaskFence()
        # Runs recorded before the REVERB snapshot minimum existed snapshot at every REVERB; runs
        # recorded before byte limits cut delivery batches by count alone; runs recorded before the
        # store's acknowledgement was checked counted any answer as the whole batch delivered; runs
        # recorded before a TERMINATED project completed its workflow stayed open. Each asked once, in
        # this order, as each run starts (before any handler), so histories replay unchanged.
        self.reverb_min = inp.settings.reverb_snapshot_min if workflow.patched(PATCH_REVERB_SNAPSHOT_MIN) else 1
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
        self.pump = DeliveryPump(
            self,
            self.engine,
            self.outbox,
            self.settings,
            self.observer,
            checked=checked,
            refusal=inp.refusal if checked else None,
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
            armed = self._grace_deadline()

            def work_or_timer_changed(armed: int | None = armed) -> bool:
                # Checked in every activation after its Updates were validated: lifts a catch-up
                # fence as soon as a later task shows up, even if nothing else runs in it.
                self.fence.observe(self._task_key())
                changed = bool(self.inbox) or self._snapshot_due() or self._grace_deadline() != armed
                return (changed or self._finished()) and workflow.all_handlers_finished()

            try:
                await workflow.wait_condition(
                    work_or_timer_changed, timeout=self._until(armed), timeout_summary="licence grace expiry"
                )
            except TimeoutError:
                pass
            self.resumed()
            await self.quiet()  # the timer may have fired in the same task as incoming Updates
            self.resumed()
            await self._fire_timers()
            while self.inbox and not self._snapshot_due():
                await self._process_signal(self.inbox.pop(), self.inbox_traces.pop(0))
            if self._snapshot_due():
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
        return workflow.info().get_current_history_length(), self._now_ms()

    def _finished(self) -> bool:
        """The project is TERMINATED and nothing is left to do: no record to deliver, no signal, no handler."""
        return (
            self.completes
            and self.engine.top == "TERMINATED"
            and not self.snapshot_wanted
            and not self.inbox
            and not self.outbox.undelivered
            and not self.receipts.pending
            and self.pump.state is PumpState.IDLE
            and workflow.all_handlers_finished()
        )

    def _snapshot_due(self) -> bool:
        if self.engine.top == "TERMINATED" and not self.snapshot_wanted:
            return False
        accepted = self.engine.index - self.snapshot_index
        # Dry runs change nothing but still fill the run's history and its Update budget.
        return (
            self.snapshot_wanted
            or accepted >= self.settings.snapshot_every
            or ((accepted > 0 or self.dry_runs > 0) and workflow.info().is_continue_as_new_suggested())
        )

    def _next_input(self) -> LifecycleInput:
        self.receipts.close_interval(self.engine.project_id)  # the receipt of this run's records
        snapshot = self.engine.snapshot()
        if workflow.patched(PATCH_ADOPT_RULES):
            snapshot.config = snapshot.config.adopt_rules()  # a project started before them adopts them now
        return LifecycleInput(
            snapshot=snapshot,
            settings=self.settings,
            undelivered=self.outbox.undelivered,
            retained=list(self.outbox.retained),
            inbox=self.inbox.items,
            rejections=list(self.rejections),
            snapshot_index=self.engine.index,
            snapshot_hlc=self.engine.document["hlc_last"],
            runs=self.runs + 1,
            refusal=self.pump.refusal,
            receipts=self.receipts.pending,
            receipts_stored=self.receipts.stored,
            entered=self.observer.entered,
        )

    def _now_ms(self) -> int:
        return int(workflow.now().timestamp() * 1000)

    def _grace_deadline(self) -> int | None:
        lic = self.engine.document["control"]["license"]
        return lic["grace_deadline_ms"] if lic["phase"] == "DEGRADED_GRACE" else None

    def _until(self, deadline_ms: int | None) -> timedelta | None:
        return None if deadline_ms is None else timedelta(milliseconds=max(1, deadline_ms - self._now_ms()))

    async def _fire_timers(self) -> None:
        deadline = self._grace_deadline()
        if deadline is not None and self._now_ms() >= deadline:
            async with self.lock:
                if self.engine.document["control"]["license"]["phase"] == "DEGRADED_GRACE":
                    self._system("License_GraceExpired", {}, parent=ROOT)

    # ------------------------------------------------------------------ transitions
    # Named after the method (UPDATE_TRANSITION): the SDK types method references only for the bare decorator.
    @workflow.update
    async def transition(self, req: ProposalRequest) -> Accepted:
        self.fence.observe(self._task_key())
        async with self.lock:  # handlers await activities: serialise, then re-check the head inside
            try:
                answer = await self._decide(req, scanned=self.scan_in_validator)
            except GuardsUnavailable as err:
                raise unavailable(err.reason) from None
        if isinstance(answer, Rejected):
            raise rejection_error(answer)
        return answer

    @transition.validator
    def validate_transition(self, req: ProposalRequest) -> None:
        """Reject what is decidable now, so those rejections write nothing to history."""
        if self.fence.fenced(self._task_key()):
            raise retry_later("the project is busy recovering a workflow task; resend the same proposal")
        try:
            admitted = self.engine.admit(req, self._now_ms())
        except ProposalError as err:
            raise rejection_error(self._rejected(err)) from None
        if isinstance(admitted, Admitted):
            # A secret must never reach history: refused here, where nothing is written. (Callers going
            # through `lifecycle.client` never send one; they ask for the quarantine with `quarantine_for_secret`.)
            # The newest rules, whatever the project's version: a validator is never replayed.
            breaches = secret_breaches(admitted.proposal)
            if breaches:
                raise rejection_error(self._secret_rejected(breaches))
            behind = self.outbox.backlog_reason()
            if behind is not None:
                raise retry_later(behind)  # back-pressure, not loss: duplicates and rejections are still answered

    # ------------------------------------------------------------------ dry runs
    # Named after the method (UPDATE_DRY_RUN), as `transition` is, so method references are typed.
    @workflow.update
    async def dry_run(self, req: ProposalRequest) -> DryRunAnswer:
        """What a real send would be answered now, guards included; changes nothing.

        Only proposals that pass admission and have guards to run get here (the validator answers
        every other one without writing history): guards run in a local activity, which a query
        cannot start. The would-be post hash is computed on a copy of the engine.
        """
        self.fence.observe(self._task_key())
        self.dry_runs += 1
        async with self.lock:  # the same head and the same facts a real send would be decided on
            verdict = dry_verdict(self.engine, req, self._now_ms())
            if isinstance(verdict, DryRunAnswer):
                return verdict
            try:
                outcomes = await evaluate_guards(self.engine, verdict, self.settings.guard_timeout_ms, self._now_ms())
            except GuardsUnavailable as err:
                raise unavailable(err.reason) from None
            return dry_apply(self.engine, verdict, outcomes, self._now_ms())

    @dry_run.validator
    def validate_dry_run(self, req: ProposalRequest) -> None:
        """Answer here, writing nothing, whenever no guard has to run."""
        if self.fence.fenced(self._task_key()):
            raise retry_later("the project is busy recovering a workflow task; resend the same proposal")
        verdict = dry_verdict(self.engine, req, self._now_ms())
        if isinstance(verdict, Admitted) and secret_breaches(verdict.proposal):
            # Matches only the newest rules (not the project's own): never accepted into history either.
            outcome = breach_outcome(secret_breaches(verdict.proposal))
            reason = "; ".join(outcome.reasons) + " (a real send would also quarantine the project)"
            breach = ProposalError("guard_failed", reason, failing_guard="policy")
            verdict = DryRunAnswer.would_reject(Rejected.of(breach, self.engine.head_hash, [result_of(outcome)]))
        if isinstance(verdict, Admitted) and verdict.transition.spec.guards:
            return  # accepted as an Update: the handler runs the guards
        answer = verdict if isinstance(verdict, DryRunAnswer) else dry_apply(self.engine, verdict, [], self._now_ms())
        raise ApplicationError(
            "dry run answered", answer.model_dump(mode="json"), type=DRY_RUN_ANSWER_TYPE, non_retryable=True
        )

    # ------------------------------------------------------------------ secrets
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
            self._quarantine_for(breach_outcome(list(req.breaches)), note)
            reason = "; ".join(breach_outcome(list(req.breaches)).reasons)
            self.rejections.append(
                RejectionLogEntry(
                    idem_key=req.idem_key,
                    transition=req.transition,
                    error="guard_failed",
                    reason=f"{reason} (refused before it reached the workflow)"[:QUARANTINE_RATIONALE_CHARS],
                    failing_guard="policy",
                    at_index=self.engine.index,
                )
            )
        return views.head_view(self.engine)

    @quarantine_for_secret.validator
    def validate_quarantine_for_secret(self, req: SecretQuarantine) -> None:
        if self.fence.fenced(self._task_key()):
            raise retry_later("the project is busy recovering a workflow task; resend the same request")

    def _secret_rejected(self, breaches: list[str]) -> Rejected:
        outcome = breach_outcome(breaches)
        breach = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
        return self._rejected(breach, [result_of(outcome)])

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
        self.snapshot_wanted = True

    async def _process_signal(self, req: ProposalRequest, parent: Context | None) -> None:
        async with self.lock:
            try:
                answer = await self._decide(req, parent or ROOT)
            except GuardsUnavailable as err:
                if not workflow.patched(PATCH_GUARD_CONTAINMENT):
                    raise err.failure from None  # recorded before: the workflow failed here
                self.rejections.append(views.log_entry(req, UNAVAILABLE_LOG_ERROR, err.reason, self.engine.index))
                return
        if isinstance(answer, Rejected):
            self.rejections.append(views.rejection_entry(req, answer, self.engine.index))

    async def _decide(
        self, req: ProposalRequest, parent: Context | None = None, scanned: bool = False
    ) -> Accepted | Rejected:
        """Decide a proposal; `parent`: the trace its span joins (None: the handler's current one).

        `scanned`: the Update validator already scanned it for secrets. The Signal path always scans here:
        a Signal's payload is in history already, so the best left to do is to refuse it and quarantine.
        Runs recorded before `scan_in_validator` scan here too.
        """
        try:
            admitted = self.engine.admit(req, self._now_ms())
        except ProposalError as err:
            rejected = self._rejected(err)
            with self.observer.transition_span(parent) as span:
                self.observer.rejected(span, _transition_of(req), rejected)
            return rejected
        if isinstance(admitted, Accepted):
            return admitted  # a duplicate: nothing new was decided, so no span of its own
        with self.observer.transition_span(parent) as span:
            answer, record = await self._decide_admitted(admitted, scanned)
            if isinstance(answer, Rejected):
                self.observer.rejected(span, admitted.proposal.transition, answer)
            elif record:
                self._accepted(answer, record, admitted.transition.spec.snapshot, span)
            else:
                self.observer.duplicate(span, answer)  # applied meanwhile under the same idem_key
        return answer

    async def _decide_admitted(
        self, admitted: Admitted, scanned: bool = False
    ) -> tuple[Accepted | Rejected, dict[str, Any]]:
        """Guards and the engine for an admitted proposal; the record is empty unless newly applied."""
        p = admitted.proposal
        breaches = [] if scanned else scan(self.engine.secret_rules, p.inputs, p.evidence)
        if breaches:
            outcome = failed("policy", *(f"breach: {b}" for b in breaches))
            self._quarantine_for(outcome)
            breach = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
            return self._rejected(breach, [result_of(outcome)]), {}
        outcomes = await evaluate_guards(self.engine, admitted, self.settings.guard_timeout_ms, self._now_ms())
        try:
            answer, record = self.engine.apply(admitted, outcomes, self._now_ms())
        except ProposalError as err:
            if err.code == "guard_failed" and err.failing_guard == "policy":
                self._quarantine_for(next(o for o in outcomes if o.guard == "policy"))
            return self._rejected(err, [result_of(o) for o in outcomes]), {}
        return answer, record

    def _rejected(self, err: ProposalError, guards: list[GuardResult] | None = None) -> Rejected:
        """A contract rejection with the head after the call (and whether the project is quarantined then)."""
        return Rejected.of(err, self.engine.head_hash, guards, quarantined=self.engine.top == "QUARANTINED")

    def _system(self, name: str, inputs: dict[str, Any], parent: Context | None = None) -> Accepted:
        """Apply a transition SWOOSH decides itself; its span joins `parent` (None: the current trace)."""
        answer, record = self.engine.apply_system(name, inputs, self._now_ms())  # may refuse: no span then
        with self.observer.transition_span(parent) as span:
            self._accepted(answer, record, False, span)
        return answer

    def _quarantine_for(self, outcome: GuardOutcome, note: str = "") -> None:
        if self.engine.top in ("QUARANTINED", "TERMINATED"):
            return
        rationale = "SHHH policy breach: " + "; ".join(outcome.reasons) + (f" ({note})" if note else "")
        try:
            self._system("Policy_Quarantine", {"reason": rationale[:QUARANTINE_RATIONALE_CHARS]})
        except ProposalError:
            return  # not quarantinable from here (e.g. already leaving); the rejection still stands

    def _accepted(self, answer: Accepted, record: dict[str, Any], snapshot_point: bool, span: Span) -> None:
        self.outbox.add(record)
        self.receipts.note(record)
        self.observer.accepted(span, answer, record, self._now_ms())
        if snapshot_point and self.engine.index - self.snapshot_index >= self.reverb_min:
            self.snapshot_wanted = True
        self.describe()

    def describe(self) -> None:
        """The workflow's current details in the Temporal UI."""
        text = details(
            self.engine.document,
            self.engine.head_hash,
            self.runs,
            self.snapshot_index,
            len(self.outbox.undelivered),
            self.settings.api_url,
        )
        workflow.set_current_details(text)
        outbox = self.outbox
        behind = outbox.backlog_reason() is not None
        self.observer.gauges(self.engine.index - self.snapshot_index, len(outbox.undelivered), behind)

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
            snapshot_index=self.snapshot_index,
            snapshot_hlc=self.snapshot_hlc,
            inbox=len(self.inbox),
            runs=self.runs,
            refusal=self.pump.refusal,
        )

    @workflow.query(name=QUERY_DECISIONS)
    def decisions(self, after_index: int = 0, limit: int = 100) -> DecisionsPage:
        return DecisionsPage(
            project_id=self.engine.project_id,
            records=self.outbox.page(after_index, limit),
            first_retained_index=self.outbox.first_retained_index(),
            head_index=self.engine.index,
        )

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
        try:
            admitted = self.engine.admit(req, self._now_ms())
        except ProposalError as err:
            return AnswerView(rejected=Rejected.of(err, self.engine.head_hash))
        return AnswerView(accepted=admitted) if isinstance(admitted, Accepted) else AnswerView()

    @workflow.query(name=QUERY_SEEN)
    def seen(self, idem_key: str) -> IdemEntry | None:
        """What the idempotency window remembers of `idem_key` (None: not applied, or older than the window)."""
        return self.engine.seen(idem_key)


def _transition_of(req: ProposalRequest) -> str | None:
    """The transition a proposal names, for the span of a proposal too malformed to parse."""
    name = req.body.get("transition") if isinstance(req.body, dict) else None
    return name[:64] if isinstance(name, str) else None
