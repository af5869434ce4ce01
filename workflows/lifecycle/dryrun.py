"""Dry runs, decided on the engine without changing it (pure: no Temporal import).

`dry_verdict` does what the workflow's `_decide` does before the guards (admission, the built-in
secret scan) without acting on either; `dry_apply` applies on a trial copy of the engine.
"""

from __future__ import annotations

from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.answers import Accepted, DryRunAnswer, GuardResult, Rejected
from swoosh.workflows.engine import Admitted, Engine
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.secrets import breach_outcome, secret_breaches


def _result(o: GuardOutcome) -> GuardResult:
    return GuardResult(guard=o.guard, ok=o.ok, reasons=list(o.reasons))


def _would_quarantine(breaches: list[str], head: str) -> DryRunAnswer:
    outcome = breach_outcome(breaches)
    reason = "; ".join(outcome.reasons) + " (a real send would also quarantine the project)"
    breach = ProposalError("guard_failed", reason, failing_guard="policy")
    return DryRunAnswer.would_reject(Rejected.of(breach, head, [_result(outcome)]))


def dry_verdict(engine: Engine, req: ProposalRequest, now_ms: int) -> DryRunAnswer | Admitted:
    """The answer when no guard has to run, else the admitted proposal."""
    head = engine.head_hash
    try:
        admitted = engine.admit(req, now_ms)
    except ProposalError as err:
        return DryRunAnswer.would_reject(Rejected.of(err, head))
    if isinstance(admitted, Accepted):
        return DryRunAnswer.would_accept(admitted, head)
    breaches = secret_breaches(admitted.proposal, engine.secret_rules, engine.config.signed_fields_exempt)
    return _would_quarantine(breaches, head) if breaches else admitted


def dry_verdict_now(engine: Engine, req: ProposalRequest, now_ms: int) -> DryRunAnswer | Admitted:
    """`dry_verdict` as the Update validator gives it: a proposal that matches the newest built-in rules
    (not only the project's own) would be refused before history, so its dry run is refused as well."""
    verdict = dry_verdict(engine, req, now_ms)
    if isinstance(verdict, Admitted):
        breaches = secret_breaches(verdict.proposal)
        if breaches:
            return _would_quarantine(breaches, engine.head_hash)
    return verdict


def dry_apply(engine: Engine, admitted: Admitted, outcomes: list[GuardOutcome], now_ms: int) -> DryRunAnswer:
    """The answer a real send would get with these guard outcomes, applied on a trial copy."""
    head = engine.head_hash
    try:
        answer, _ = engine.trial().apply(admitted, outcomes, now_ms)
    except ProposalError as err:
        return DryRunAnswer.would_reject(Rejected.of(err, head, [_result(o) for o in outcomes]))
    return DryRunAnswer.would_accept(answer, head)
