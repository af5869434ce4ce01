"""Fold a project's WAL (its runs' histories) through the pure engine and compare every hash.

Independent of the workflow code: starting from the first run's snapshot, each decision record's
transition is re-applied — callers' proposals re-admitted from their signed payloads (signatures
re-verified), SWOOSH's own from `system_inputs` — with the guard outcomes the record holds. Every
recomputed `state_post_hash` and `dr_hash` must equal the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.engine import Admitted, Engine, EngineConfig
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.identities import role_of
from swoosh.workflows.reducer import clone
from swoosh.workflows.replay.history import RunFacts
from swoosh.workflows.statechart import SYSTEM_SIGNER, default_statechart


@dataclass
class FoldResult:
    project_id: str
    runs: int
    start_index: int
    transitions: int = 0
    final_hash: str | None = None
    reported_hash: str | None = None
    snapshot_checks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.final_hash == self.reported_hash

    def as_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "runs": self.runs,
            "start_index": self.start_index,
            "transitions": self.transitions,
            "final_hash": self.final_hash,
            "reported_hash": self.reported_hash,
            "snapshot_checks": self.snapshot_checks,
            "ok": self.ok,
            "problems": self.problems,
        }


def order_runs(runs: list[RunFacts]) -> list[RunFacts]:
    """Runs of one project ordered by the index their snapshot starts at."""
    return sorted(runs, key=lambda r: r.start.snapshot.document["meta"]["index"] if r.start else -1)


def configs_by_start(runs: list[RunFacts]) -> dict[int, EngineConfig]:
    """Each run's engine config, by the index its snapshot starts at: a run may adopt newer rules."""
    return {int(r.start.snapshot.document["meta"]["index"]): r.start.snapshot.config for r in runs if r.start}


def fold(runs: list[RunFacts], reported_head: str | None = None) -> FoldResult:
    runs = order_runs(runs)
    first = runs[0].start
    if first is None:
        raise ValueError("the first run has no start event")
    snap = first.snapshot.model_copy(deep=True)
    snap.document = clone(snap.document)
    engine = Engine(default_statechart(), snap)
    result = FoldResult(project_id=engine.project_id, runs=len(runs), start_index=engine.index)
    records: dict[int, dict[str, Any]] = {}
    proposals: dict[str, list[Any]] = {}
    snapshot_hashes: dict[int, str] = {}
    for run in runs:
        records.update(run.records)
        for key, reqs in run.proposals.items():
            proposals.setdefault(key, []).extend(reqs)
        if run.next_input is not None:
            doc = run.next_input.snapshot.document
            snapshot_hashes[int(doc["meta"]["index"])] = content_hash(doc)
        if run.start is not None and run is not runs[0]:
            doc = run.start.snapshot.document
            snapshot_hashes[int(doc["meta"]["index"])] = content_hash(doc)
    last_index = max(records, default=engine.index)
    configs = configs_by_start(runs)
    for index in range(engine.index + 1, last_index + 1):
        engine.config = configs.get(index - 1, engine.config)  # the rules of the run that applied it
        rec = records.get(index)
        if rec is None:
            result.problems.append(f"index {index}: no decision record for it anywhere in the history")
            break
        problem = apply_record(engine, rec, proposals)
        if problem:
            result.problems.append(f"index {index} ({rec['transition']}): {problem}")
            break
        result.transitions += 1
        if index in snapshot_hashes:
            result.snapshot_checks += 1
            if snapshot_hashes[index] != engine.head_hash:
                result.problems.append(
                    f"index {index}: snapshot hash {snapshot_hashes[index]} ≠ folded {engine.head_hash}"
                )
                break
    result.final_hash = engine.head_hash
    last = runs[-1]
    if reported_head is not None:
        result.reported_hash = reported_head
    elif last.next_input is not None:
        result.reported_hash = content_hash(last.next_input.snapshot.document)
    elif records:
        result.reported_hash = str(records[last_index]["state_post_hash"])
    else:
        result.reported_hash = content_hash(first.snapshot.document)
    return result


def apply_record(engine: Engine, rec: dict[str, Any], proposals: dict[str, list[Any]]) -> str | None:
    """Re-apply one decision record's transition to `engine`; a problem description, or None."""
    problem = signer_problem(engine.document, rec)
    if problem:
        return problem
    now_ms = HLC.parse(rec["hlc"]).wall_ms
    outcomes = [GuardOutcome(guard=g["guard"], ok=g["ok"], reasons=tuple(g["reasons"])) for g in rec["guards"]]
    try:
        if rec["signer"] == SYSTEM_SIGNER:
            answer, new = engine.apply_system(rec["transition"], dict(rec.get("system_inputs") or {}), now_ms)
        else:
            candidates = proposals.get(rec["idem_key"], [])
            if not candidates:
                return f"the proposal with idem_key {rec['idem_key']} is not in the history"
            answer, new = _apply_caller(engine, candidates, outcomes, now_ms)
    except ProposalError as err:
        return f"re-applying it was rejected: {err.code}: {err.reason}"
    if answer.state_post_hash != rec["state_post_hash"]:
        return f"folded state_post_hash {answer.state_post_hash} ≠ recorded {rec['state_post_hash']}"
    if new.get("dr_hash") != rec["dr_hash"]:
        return f"folded decision record {new.get('dr_hash')} ≠ recorded {rec['dr_hash']}"
    return None


def signer_problem(document: dict[str, Any], rec: dict[str, Any]) -> str | None:
    """Why the record's signer could not have proposed it with the identities in force before it, or None."""
    t = default_statechart().transitions.get(str(rec.get("transition")))
    if t is None:
        return f"{rec.get('transition')} is not a transition of the statechart"
    signer = str(rec.get("signer"))
    if signer == SYSTEM_SIGNER:
        return None  # SWOOSH's own (timers, quarantine): re-applied from the record's system_inputs
    if role_of(document["boot"]["identities"], signer, t.spec.roles) is None:
        return f"signer {signer} was not an identity with a role for it ({', '.join(t.spec.roles)}) at this index"
    return None


def _apply_caller(engine: Engine, candidates: list[Any], outcomes: list[GuardOutcome], now_ms: int) -> tuple[Any, Any]:
    last_err: ProposalError | None = None
    for req in candidates:
        try:
            admitted = engine.admit(req, now_ms)
        except ProposalError as err:
            last_err = err
            continue
        if isinstance(admitted, Admitted):
            return engine.apply(admitted, outcomes, now_ms)
    raise last_err or ProposalError("invalid_transition", "only duplicates of an applied proposal were found")
