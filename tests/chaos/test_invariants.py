"""The invariant checker catches violations planted in recorded data (pure engine trail, no Temporal)."""

from __future__ import annotations

import copy
import time

import pytest

from swoosh.api.client import ProposalFactory, Signers
from swoosh.chaos.callers import ReceivedAnswer
from swoosh.chaos.faults import ResetMark
from swoosh.chaos.invariants import ProjectEvidence, Step, check_project
from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Admitted, Engine, EngineConfig, EngineSnapshot
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.reducer import clone
from swoosh.workflows.replay.audit import audit
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP, valid_inputs

CHART = default_statechart()
PROJECT = "planted"


def _trail() -> ProjectEvidence:
    """A clean lifecycle + two EXECUTION loops, as the checker would gather it from a real run."""
    signers = Signers.generate()
    f = ProposalFactory(signers, PROJECT, prefix="plant")
    engine = Engine(CHART, EngineSnapshot(document=genesis(CHART, PROJECT, signers.keyring()), config=EngineConfig()))
    steps: list[Step] = []
    answers: list[ReceivedAnswer] = []
    version = 0
    for n, t in enumerate(LIFECYCLE + LOOP + LOOP):
        inputs, version = valid_inputs(f, t, engine.document, n, version, "backbeat:W-1")
        body = f.body(t, engine.head_hash, inputs, window_id="backbeat:W-1")
        now_ms = time.time_ns() // 1_000_000
        admitted = engine.admit(ProposalRequest(body=body), now_ms)
        assert isinstance(admitted, Admitted)
        outcomes = [GuardOutcome(guard=g, ok=True, reasons=("planted",)) for g in CHART.transitions[t].spec.guards]
        pre = clone(engine.document)
        answer, record = engine.apply(admitted, outcomes, now_ms)
        steps.append(Step(record, pre, clone(engine.document), inputs))
        answers.append(
            ReceivedAnswer(PROJECT, answer.idem_key, t, answer.index, answer.state_post_hash, False, answer.hlc, n, 0)
        )
    records = [s.record for s in steps]
    return ProjectEvidence(
        project_id=PROJECT,
        steps=steps,
        history_records={r["index"]: r for r in records},
        sink_records=copy.deepcopy(records),
        answers=answers,
    )


@pytest.fixture(scope="module")
def clean() -> ProjectEvidence:
    return _trail()


@pytest.fixture
def ev(clean: ProjectEvidence) -> ProjectEvidence:
    return copy.deepcopy(clean)


def _violated(ev: ProjectEvidence) -> set[str]:
    return set(check_project(ev).violations)


def test_checker_clean_trail_has_no_violations(ev: ProjectEvidence) -> None:
    verdict = check_project(ev)
    assert verdict.count == 0 and verdict.lost == 0
    assert verdict.checked["epoch_once"] == len(LIFECYCLE) + 2 * len(LOOP)
    assert verdict.checked["windows"] == 2 * len(LOOP)


def test_checker_catches_a_removed_decision_record(ev: ProjectEvidence) -> None:
    del ev.sink_records[5]
    ev.audit_problems = audit(ev.sink_records, [])
    assert {"decision_records", "dr_chain"} <= _violated(ev)


def test_checker_counts_a_decision_record_stored_twice(ev: ProjectEvidence) -> None:
    ev.sink_records.insert(6, dict(ev.sink_records[5]))
    verdict = check_project(ev)
    assert verdict.duplicated == 1 and "decision_records" in verdict.violations


def test_checker_catches_an_epoch_bumped_twice(ev: ProjectEvidence) -> None:
    step = next(s for s in ev.steps if s.record["transition"] == "Council_QuorumCert")
    step.post["epoch"]["council"] += 1
    assert _violated(ev) == {"epoch_once"}


def test_checker_catches_an_hlc_regression(ev: ProjectEvidence) -> None:
    ev.steps[7].record["hlc"] = ev.steps[3].record["hlc"]
    assert _violated(ev) == {"hlc_monotonic"}


def test_checker_catches_a_lost_accepted_answer(ev: ProjectEvidence) -> None:
    lost = ev.answers[4]
    ev.answers.append(
        ReceivedAnswer(PROJECT, "plant:lost", lost.transition, 99, lost.state_post_hash, False, lost.hlc, 50, 0)
    )
    verdict = check_project(ev)
    assert verdict.lost == 1 and set(verdict.violations) == {"nothing_lost"}


def test_checker_counts_reset_discarded_answers_separately(ev: ProjectEvidence) -> None:
    a = ev.answers[4]
    ev.answers.append(ReceivedAnswer(PROJECT, "plant:gone", a.transition, 30, a.state_post_hash, False, a.hlc, 50, 0))
    ev.resets.append(ResetMark(PROJECT, at=55.0, done=56.0, kept_index=20, event_id=9, old_run_id="r"))
    verdict = check_project(ev)
    assert verdict.lost == 0 and verdict.reset_discarded == 1 and verdict.count == 0


def test_checker_catches_a_transition_applied_while_quarantined(ev: ProjectEvidence) -> None:
    ev.steps[-2].pre["control"]["top"] = "QUARANTINED"
    assert "quarantine_sticky" in _violated(ev)


def test_checker_catches_a_quorum_certificate_for_another_set(ev: ProjectEvidence) -> None:
    step = next(s for s in ev.steps if s.record["transition"] == "Council_QuorumCert")
    step.post["council"]["quorum_cert"]["members_hash"] = "sha256-" + "0" * 64
    assert _violated(ev) == {"quorum_cert"}


def test_checker_catches_execution_entered_without_ready_regions(ev: ProjectEvidence) -> None:
    step = next(s for s in ev.steps if s.record["transition"] == "Execution_AllReady")
    step.pre["environment"]["phase"] = "HEALTHCHECK"
    assert _violated(ev) == {"execution_entry"}


def test_checker_catches_a_window_transition_without_an_open_window(ev: ProjectEvidence) -> None:
    step = next(s for s in ev.steps if s.record["transition"] == "Execution_BeatReviewGate")
    step.record["guards"] = []
    assert _violated(ev) == {"windows"}


def test_checker_catches_an_idem_key_applied_twice(ev: ProjectEvidence) -> None:
    ev.steps[9].record["idem_key"] = ev.steps[8].record["idem_key"]
    assert "idem_once" in _violated(ev)


def test_checker_catches_a_workflow_that_failed(ev: ProjectEvidence) -> None:
    ev.status = "FAILED"
    assert "running" in check_project(ev).violations
