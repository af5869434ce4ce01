"""The project engine: admission checks, idempotency, reduction and decision records, all pure.

The Temporal workflow, the replay tools and the tests drive this same object; it never touches
Temporal, the clock or the network. Callers pass `now_ms` (the workflow's deterministic time).

Admission order (the first failing check decides the code):
schema → unknown_transition → bad_signature → unauthorized_signer → inputs schema →
inputs_hash_mismatch → duplicate idem_key (answered, not rejected) → terminated → quarantined →
invalid_transition → stale_state_hash → hlc_regression → hlc_too_far_ahead → Identity_Rotate's
rules (invalid_transition, unauthorized_signer); then guards → guard_failed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from swoosh.guards.facts import PolicyRuleSpec
from swoosh.guards.outcome import GuardOutcome
from swoosh.guards.policy import builtin_rules, redact
from swoosh.workflows.answers import Accepted, GuardResult, IdemEntry
from swoosh.workflows.canonical import canonical_json, content_hash, hash_of
from swoosh.workflows.decision import seal, ucxl_backlink
from swoosh.workflows.engine_config import (
    ADOPTED_AT_SNAPSHOT,
    RULES_BEFORE,
    EngineConfig,
    EngineSnapshot,
    new_engine_config,
)
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC, order_key, too_far_ahead
from swoosh.workflows.identities import ROTATE, check_rotation, check_rotation_inputs
from swoosh.workflows.inputs import validate_inputs
from swoosh.workflows.limits import COPIED_BYTES, MAX_IDENTITIES, budget_problem, needs_trial
from swoosh.workflows.proposal import (
    SYSTEM_IDEM_PREFIX,
    Proposal,
    ProposalRequest,
    parse_proposal,
    verify_signature,
)
from swoosh.workflows.reducer import Step, check_source, reduce
from swoosh.workflows.statechart import SYSTEM_SIGNER, Statechart, Transition

ESCAPES_QUARANTINE = ("Policy_Release", "Policy_ConfirmedBlock")


@dataclass(frozen=True, slots=True)
class Admitted:
    """A proposal that passed every deterministic check against the head it was checked on."""

    proposal: Proposal
    transition: Transition
    role: str
    head_hash: str
    gateway_token: str | None = None  # the API token whose signing gateway signed it, if one did


class Engine:
    def __init__(self, chart: Statechart, snapshot: EngineSnapshot) -> None:
        self.chart = chart
        self.config = snapshot.config
        self.document: dict[str, Any] = snapshot.document
        raw = canonical_json(self.document)
        self.head_hash, self.head_bytes = hash_of(raw), len(raw)
        self.dr_head = snapshot.dr_head
        self._idem: OrderedDict[str, IdemEntry] = OrderedDict((e.idem_key, e) for e in snapshot.idem)
        self._initials = {name: m.initial for name, m in chart.machines.items()}
        self.secret_rules = builtin_rules(self.config.secret_rules)

    # ------------------------------------------------------------------ reads
    @property
    def project_id(self) -> str:
        return str(self.document["meta"]["project_id"])

    @property
    def index(self) -> int:
        return int(self.document["meta"]["index"])

    @property
    def top(self) -> str:
        return str(self.document["control"]["top"])

    def snapshot(self) -> EngineSnapshot:
        return EngineSnapshot(
            document=self.document, idem=list(self._idem.values()), dr_head=self.dr_head, config=self.config
        )

    def seen(self, idem_key: str) -> IdemEntry | None:
        return self._idem.get(idem_key)

    def trial(self) -> Engine:
        """A copy to try a proposal on (a dry run): applying to it leaves this engine as it is.

        The reducer never writes the document it is given (copy-on-write), so the copy shares it;
        the idempotency window is the copy's own.
        """
        return Engine(
            self.chart,
            EngineSnapshot(
                document=self.document, idem=list(self._idem.values()), dr_head=self.dr_head, config=self.config
            ),
        )

    # ------------------------------------------------------------------ admission
    def admit(self, request: ProposalRequest, now_ms: int) -> Admitted | Accepted:
        """Every deterministic check; a duplicate gets its original answer. Raises ProposalError."""
        proposal = parse_proposal(request)
        if proposal.project_id is not None and proposal.project_id != self.project_id:
            raise ProposalError("schema", f"proposal is for project {proposal.project_id}, this is {self.project_id}")
        t = self.chart.transitions.get(proposal.transition)
        if t is None or (t.name == ROTATE and not self.config.identity_rotation):
            raise ProposalError("unknown_transition", f"{proposal.transition} is not a transition of the statechart")
        if t.spec.system:
            raise ProposalError("unauthorized_signer", f"{t.name} is proposed by SWOOSH itself, never by a caller")
        if not verify_signature(request, proposal):
            raise ProposalError("bad_signature", "signature does not verify over the body as sent")
        role = self._role(proposal.signer, t)
        limits = self.config.state_limits
        validate_inputs(
            t.spec,
            proposal.inputs,
            election_epoch=self.config.election_epoch,
            copied_bytes=COPIED_BYTES if limits else None,
        )
        if t.name == ROTATE:
            check_rotation_inputs(proposal.inputs)
        inputs_raw = canonical_json(proposal.inputs)
        if hash_of(inputs_raw) != proposal.inputs_hash:
            raise ProposalError("inputs_hash_mismatch", "inputs_hash is not the hash of inputs")
        dup = self._duplicate(proposal)
        if dup is not None:
            return dup
        self._check_head(proposal, t, now_ms)
        if t.name == ROTATE:
            check_rotation(self.document, proposal.signer, proposal.inputs, MAX_IDENTITIES if limits else None)
        if limits and needs_trial(self.head_bytes, len(inputs_raw)):
            self._within_budget(reduce(self.chart, self.document, t, self._step(proposal)))
        return Admitted(
            proposal=proposal, transition=t, role=role, head_hash=self.head_hash, gateway_token=request.gateway_token
        )

    def _step(self, p: Proposal) -> Step:
        limits = self.config.state_limits
        return Step(p.signer, p.idem_key, p.hlc, p.window_id, p.inputs, self.config.grace_ms, self._initials, limits)

    def _within_budget(self, new: dict[str, Any]) -> tuple[str, int]:
        """The new document's hash and size; ProposalError when it would pass the budget (see limits.py)."""
        raw = canonical_json(new)
        problem = budget_problem(len(raw), self.head_bytes)
        if problem is not None:
            raise ProposalError("invalid_transition", problem)
        return hash_of(raw), len(raw)

    def _role(self, signer: str, t: Transition) -> str:
        for identity in self.document["boot"]["identities"]:
            if identity["id"] == signer:
                roles = identity["roles"]
                for role in t.spec.roles:
                    if "*" in roles or role in roles:
                        return role
                raise ProposalError(
                    "unauthorized_signer",
                    f"{t.name} needs one of the roles {', '.join(t.spec.roles)}; signer has {', '.join(roles)}",
                )
        raise ProposalError("unauthorized_signer", f"signer {signer} is not an identity of project {self.project_id}")

    def _duplicate(self, p: Proposal) -> Accepted | None:
        entry = self._idem.get(p.idem_key)
        if entry is None:
            return None
        if (entry.signer, entry.transition, entry.inputs_hash) != (p.signer, p.transition, p.inputs_hash):
            raise ProposalError(
                "invalid_transition",
                f"idem_key {p.idem_key} was already used for a different proposal (index {entry.index})",
            )
        return Accepted(
            duplicate=True,
            state_hash=self.head_hash,
            quarantined=self.top == "QUARANTINED",
            project_id=self.project_id,
            transition=entry.transition,
            index=entry.index,
            state_pre_hash=entry.state_pre_hash,
            state_post_hash=entry.state_post_hash,
            hlc=entry.hlc,
            idem_key=entry.idem_key,
            decision_record=None,
            dr_hash=entry.dr_hash,
        )

    def _check_head(self, p: Proposal, t: Transition, now_ms: int) -> None:
        top = self.top
        if top == "TERMINATED":
            raise ProposalError("terminated", f"project {self.project_id} is TERMINATED; nothing more can happen")
        if top == "QUARANTINED" and "QUARANTINED" not in t.sources:
            rationale = self.document["policy"]["rationale"]
            also = " (and Identity_Rotate)" if self.config.identity_rotation else ""
            raise ProposalError(
                "quarantined",
                f"project is QUARANTINED ({rationale}); only Policy_Release or Policy_ConfirmedBlock apply{also}",
            )
        check_source(self.chart, self.document, t)
        if p.current_state_hash != self.head_hash:
            raise ProposalError(
                "stale_state_hash", f"current_state_hash is not the head {self.head_hash}; re-read and resubmit"
            )
        hlc = p.parsed_hlc
        last = self._last_order_key()
        if last is not None and order_key(hlc, p.signer, p.idem_key) <= last:
            raise ProposalError(
                "hlc_regression", f"hlc {p.hlc} is not after the last applied {self.document['hlc_last']}"
            )
        if too_far_ahead(hlc, now_ms, self.config.max_offset_ms):
            ahead = hlc.wall_ms - now_ms
            raise ProposalError(
                "hlc_too_far_ahead", f"hlc {p.hlc} is {ahead} ms ahead (max {self.config.max_offset_ms} ms)"
            )

    def _last_order_key(self) -> tuple[int, int, str, str] | None:
        last = self.document["hlc_last"]
        if last is None:
            return None
        meta = self.document["meta"]
        return order_key(HLC.parse(last), meta["last_signer"] or "", meta["last_idem_key"] or "")

    # ------------------------------------------------------------------ application
    def apply(self, admitted: Admitted, outcomes: list[GuardOutcome], now_ms: int) -> tuple[Accepted, dict[str, Any]]:
        """Apply an admitted proposal whose guards ran; returns the answer and its decision record.

        Re-checks the head first: another proposal may have been applied since admission.
        """
        p, t = admitted.proposal, admitted.transition
        dup = self._duplicate(p)
        if dup is not None:
            return dup, {}
        if admitted.head_hash != self.head_hash:
            # Another proposal was applied since admission: decide again against the new head.
            # (With the head unchanged every check gives the same answer; time only moves forward.)
            self._role(p.signer, t)  # a rotation may have removed the signer since
            self._check_head(p, t, now_ms)
            if t.name == ROTATE:
                cap = MAX_IDENTITIES if self.config.state_limits else None
                check_rotation(self.document, p.signer, p.inputs, cap)
        self._check_outcomes(t, outcomes)
        step = self._step(p)
        return self._commit(t, step, p.inputs_hash, p.evidence, outcomes, admitted.role, admitted.gateway_token)

    @staticmethod
    def _check_outcomes(t: Transition, outcomes: list[GuardOutcome]) -> None:
        by_name = {o.guard: o for o in outcomes}
        for name in t.spec.guards:
            outcome = by_name.get(name)
            if outcome is None:
                raise ProposalError("guard_failed", f"guard {name} was not evaluated", failing_guard=name)
            if not outcome.ok:
                raise ProposalError("guard_failed", f"{name}: {'; '.join(outcome.reasons)}", failing_guard=name)

    def apply_system(self, name: str, inputs: dict[str, Any], now_ms: int) -> tuple[Accepted, dict[str, Any]]:
        """Apply a transition SWOOSH itself decides (timers, policy quarantine); signer swoosh:system."""
        t = self.chart.transitions[name]
        if self.top == "TERMINATED":
            raise ProposalError("terminated", "project is TERMINATED")
        check_source(self.chart, self.document, t)
        validate_inputs(t.spec, inputs)
        last = HLC.parse(self.document["hlc_last"]) if self.document["hlc_last"] else HLC(0, 0)
        hlc = HLC(now_ms, 0) if now_ms > last.wall_ms else HLC(last.wall_ms, last.counter + 1)
        idem_key = f"{SYSTEM_IDEM_PREFIX}{name}:{self.index + 1}"  # callers cannot use this prefix
        limits = self.config.state_limits
        step = Step(SYSTEM_SIGNER, idem_key, hlc.format(), None, inputs, self.config.grace_ms, self._initials, limits)
        return self._commit(t, step, content_hash(inputs), [], [], "system")

    def _commit(
        self,
        t: Transition,
        step: Step,
        inputs_hash: str,
        evidence: list[str],
        outcomes: list[GuardOutcome],
        role: str,
        gateway_token: str | None = None,
    ) -> tuple[Accepted, dict[str, Any]]:
        pre_hash = self.head_hash
        new = reduce(self.chart, self.document, t, step)
        if self.config.state_limits and step.signer != SYSTEM_SIGNER:
            post_hash, post_bytes = self._within_budget(new)
        else:  # SWOOSH's own transitions are exempt: each adds a bounded amount (a quarantine's rationale)
            raw = canonical_json(new)
            post_hash, post_bytes = hash_of(raw), len(raw)
        index = int(new["meta"]["index"])
        guards = [o.as_json() for o in outcomes]
        record = seal(
            {
                "project_id": self.project_id,
                "index": index,
                "transition": t.name,
                "signer": step.signer,
                "idem_key": step.idem_key,
                "hlc": step.hlc,
                "window_id": step.window_id,
                "state_pre_hash": pre_hash,
                "state_post_hash": post_hash,
                "inputs_hash": inputs_hash,
                "evidence": redact(list(evidence), self.secret_rules),
                "guards": guards,
                "justification": _justification(t, step, outcomes, role, self.secret_rules, gateway_token),
                "ucxl": ucxl_backlink(
                    self.project_id, step.signer, role, t.name, step.hlc, index, self.config.ucxl_backlink
                ),
                # A caller's inputs are in its Update/Signal payload; SWOOSH's own are kept here so a
                # pure fold over the history can re-apply every transition.
                "system_inputs": step.inputs if step.signer == SYSTEM_SIGNER else None,
                "prev_dr_hash": self.dr_head,
            }
        )
        self.document, self.head_hash, self.dr_head = new, post_hash, record["dr_hash"]
        self.head_bytes = post_bytes
        self._remember(
            IdemEntry(
                idem_key=step.idem_key,
                signer=step.signer,
                transition=t.name,
                inputs_hash=inputs_hash,
                index=index,
                hlc=step.hlc,
                state_pre_hash=pre_hash,
                state_post_hash=post_hash,
                dr_hash=record["dr_hash"],
            )
        )
        answer = Accepted(
            state_hash=post_hash,
            quarantined=self.top == "QUARANTINED",
            project_id=self.project_id,
            transition=t.name,
            index=index,
            state_pre_hash=pre_hash,
            state_post_hash=post_hash,
            hlc=step.hlc,
            idem_key=step.idem_key,
            decision_record=record,
            dr_hash=record["dr_hash"],
            guards=[GuardResult.model_validate(g) for g in guards],
        )
        return answer, record

    def _remember(self, entry: IdemEntry) -> None:
        self._idem[entry.idem_key] = entry
        while len(self._idem) > self.config.idem_window:
            self._idem.popitem(last=False)


def _justification(
    t: Transition,
    step: Step,
    outcomes: list[GuardOutcome],
    role: str,
    rules: tuple[PolicyRuleSpec, ...],
    gateway_token: str | None = None,
) -> str:
    reason = step.inputs.get("reason")
    parts = [f"{t.name} proposed by {role} {step.signer}"]
    if gateway_token is not None:
        parts[0] += f" (signed by SWOOSH's signing gateway for API token {gateway_token})"
    if isinstance(reason, str):
        parts.append(f"reason: {redact(reason, rules)}")  # the only caller-written text in it
    for o in outcomes:
        parts.append(f"{o.guard} {'ok' if o.ok else 'failed'}: {'; '.join(o.reasons)}")
    if not outcomes:
        parts.append("no guards")
    return ". ".join(parts)


__all__ = [
    "ADOPTED_AT_SNAPSHOT",
    "ESCAPES_QUARANTINE",
    "RULES_BEFORE",
    "Admitted",
    "Engine",
    "EngineConfig",
    "EngineSnapshot",
    "new_engine_config",
]
