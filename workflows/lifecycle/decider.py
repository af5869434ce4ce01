"""The decision path of a running project: admit, scan, run the guards, apply, record, quarantine.

Runs inside `ProjectLifecycle` (workflow code: deterministic, no I/O); the workflow holds the lock
around every call that awaits. `decide` returns `Accepted | Rejected`: only the Update handler turns a
rejection into an error, the Signal path logs it. Dry runs take the same path up to the guards and
apply on a trial copy. Snapshot timing lives in `SnapshotPolicy`: the decider only tells it that a
transition was accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from opentelemetry.context import Context
    from opentelemetry.trace import Span

    from swoosh.guards.outcome import GuardOutcome, failed
    from swoosh.guards.policy import scan
    from swoosh.workflows.answers import Accepted, DryRunAnswer, GuardResult, Rejected
    from swoosh.workflows.engine import Admitted, Engine
    from swoosh.workflows.errors import ProposalError
    from swoosh.workflows.lifecycle.dryrun import dry_apply, dry_verdict, dry_verdict_now
    from swoosh.workflows.lifecycle.guarding import (
        GuardsUnavailable,
        evaluate_guards,
        rejection_error,
        result_of,
        retry_later,
        unavailable,
    )
    from swoosh.workflows.lifecycle.observe import Observer
    from swoosh.workflows.lifecycle.outbox import Outbox
    from swoosh.workflows.lifecycle.receipts import ReceiptBook
    from swoosh.workflows.lifecycle.snapshots import SnapshotPolicy
    from swoosh.workflows.lifecycle.tuning import QUARANTINE_RATIONALE_CHARS
    from swoosh.workflows.messages import DRY_RUN_ANSWER_TYPE, LifecycleSettings
    from swoosh.workflows.proposal import ProposalRequest
    from swoosh.workflows.secrets import RATIONALE_PREFIX, breach_outcome, secret_breaches


def now_ms() -> int:
    """The workflow's clock (the current task's start, the same on every replay), in epoch ms."""
    return int(workflow.now().timestamp() * 1000)


def grace_deadline(engine: Engine) -> int | None:
    """The licence grace deadline (epoch ms) the run loop arms a timer for, if the licence is in grace."""
    lic = engine.document["control"]["license"]
    return lic["grace_deadline_ms"] if lic["phase"] == "DEGRADED_GRACE" else None


def until(deadline_ms: int | None) -> timedelta | None:
    return None if deadline_ms is None else timedelta(milliseconds=max(1, deadline_ms - now_ms()))


@dataclass(eq=False)
class Decider:
    """The parts of the run it decides with; `changed` is called after every accepted transition (the
    workflow refreshes its UI details)."""

    engine: Engine
    settings: LifecycleSettings
    outbox: Outbox
    receipts: ReceiptBook
    observer: Observer
    snapshots: SnapshotPolicy
    changed: Callable[[], None]

    def check(self, req: ProposalRequest) -> None:
        """The Update validator's part: raise for what is decidable now, so it writes nothing to history."""
        engine = self.engine
        try:
            admitted = engine.admit(req, now_ms())
        except ProposalError as err:
            raise rejection_error(self.rejected(err)) from None
        if isinstance(admitted, Admitted):
            # A secret must never reach history: refused here, where nothing is written. (Callers going
            # through `lifecycle.client` never send one; they ask for the quarantine with `quarantine_for_secret`.)
            # The newest rules, whatever the project's version: a validator is never replayed.
            breaches = secret_breaches(admitted.proposal)
            if breaches:
                outcome = breach_outcome(breaches)
                breach = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
                raise rejection_error(self.rejected(breach, [result_of(outcome)]))
            behind = self.outbox.backlog_reason()
            if behind is not None:
                raise retry_later(behind)  # back-pressure, not loss: duplicates and rejections are still answered

    async def decide(
        self, req: ProposalRequest, parent: Context | None = None, scanned: bool = False
    ) -> Accepted | Rejected:
        """Decide a proposal; `parent`: the trace its span joins (None: the handler's current one).

        `scanned`: the Update validator already scanned it for secrets. The Signal path always scans here:
        a Signal's payload is in history already, so the best left to do is to refuse it and quarantine.
        Runs recorded before the validator scanned scan here too.
        """
        try:
            admitted = self.engine.admit(req, now_ms())
        except ProposalError as err:
            rejected = self.rejected(err)
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
        engine, p = self.engine, admitted.proposal
        breaches = (
            [] if scanned else scan(engine.secret_rules, p.inputs, p.evidence, engine.config.signed_fields_exempt)
        )
        if breaches:
            outcome = failed("policy", *(f"breach: {b}" for b in breaches))
            self.quarantine_for(outcome)
            breach = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
            return self.rejected(breach, [result_of(outcome)]), {}
        outcomes = await evaluate_guards(engine, admitted, self.settings.guard_timeout_ms, now_ms())
        try:
            answer, record = engine.apply(admitted, outcomes, now_ms())
        except ProposalError as err:
            if err.code == "guard_failed" and err.failing_guard == "policy":
                self.quarantine_for(next(o for o in outcomes if o.guard == "policy"))
            return self.rejected(err, [result_of(o) for o in outcomes]), {}
        return answer, record

    async def dry_run(self, req: ProposalRequest) -> DryRunAnswer:
        """A dry run that has guards to run (the validator answered every other one)."""
        verdict = dry_verdict(self.engine, req, now_ms())
        if isinstance(verdict, DryRunAnswer):
            return verdict
        try:
            outcomes = await evaluate_guards(self.engine, verdict, self.settings.guard_timeout_ms, now_ms())
        except GuardsUnavailable as err:
            raise unavailable(err.reason) from None
        return dry_apply(self.engine, verdict, outcomes, now_ms())

    def check_dry_run(self, req: ProposalRequest) -> None:
        """The dry-run validator's part: answer (as an error carrying the answer) whenever no guard has to run."""
        verdict = dry_verdict_now(self.engine, req, now_ms())
        if isinstance(verdict, Admitted) and verdict.transition.spec.guards:
            return  # accepted as an Update: the handler runs the guards
        answer = verdict if isinstance(verdict, DryRunAnswer) else dry_apply(self.engine, verdict, [], now_ms())
        raise ApplicationError(
            "dry run answered", answer.model_dump(mode="json"), type=DRY_RUN_ANSWER_TYPE, non_retryable=True
        )

    def expire_grace(self, parent: Context | None) -> None:
        """The licence grace deadline passed: DEGRADED_GRACE ends (unless a transition ended it meanwhile)."""
        if self.engine.document["control"]["license"]["phase"] == "DEGRADED_GRACE":
            self.system("License_GraceExpired", {}, parent=parent)

    def rejected(self, err: ProposalError, guards: list[GuardResult] | None = None) -> Rejected:
        """A contract rejection with the head after the call (and whether the project is quarantined then)."""
        return Rejected.of(err, self.engine.head_hash, guards, quarantined=self.engine.top == "QUARANTINED")

    def system(self, name: str, inputs: dict[str, Any], parent: Context | None = None) -> Accepted:
        """Apply a transition SWOOSH decides itself; its span joins `parent` (None: the current trace)."""
        answer, record = self.engine.apply_system(name, inputs, now_ms())  # may refuse: no span then
        with self.observer.transition_span(parent) as span:
            self._accepted(answer, record, False, span)
        return answer

    def quarantine_for(self, outcome: GuardOutcome, note: str = "") -> None:
        if self.engine.top in ("QUARANTINED", "TERMINATED"):
            return
        rationale = RATIONALE_PREFIX + "; ".join(outcome.reasons) + (f" ({note})" if note else "")
        try:
            self.system("Policy_Quarantine", {"reason": rationale[:QUARANTINE_RATIONALE_CHARS]})
        except ProposalError:
            return  # not quarantinable from here (e.g. already leaving); the rejection still stands

    def _accepted(self, answer: Accepted, record: dict[str, Any], snapshot_point: bool, span: Span) -> None:
        self.outbox.add(record)
        self.receipts.note(record)
        self.observer.accepted(span, answer, record, now_ms())
        self.snapshots.accepted(self.engine, snapshot_point)
        self.changed()


def _transition_of(req: ProposalRequest) -> str | None:
    """The transition a proposal names, for the span of a proposal too malformed to parse."""
    name = req.body.get("transition") if isinstance(req.body, dict) else None
    return name[:64] if isinstance(name, str) else None
