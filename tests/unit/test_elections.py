"""Votes are bound to their election: cast in another one, they are refused; ejected members neither vote nor stand."""

from __future__ import annotations

from typing import Any

import pytest

from swoosh.guards.council import election_epoch, members_hash
from swoosh.workflows.engine import Engine, EngineConfig
from swoosh.workflows.errors import ProposalError
from tests.unit.helpers import SIGNERS, WINDOW, Driver

COUNCIL = ["council-1", "council-2", "council-3"]
IDS = {n: SIGNERS.id(n) for n in COUNCIL}


def quorum(d: Driver, members: list[str], voters: list[str], epoch: int | None = None) -> dict[str, Any]:
    ids = sorted(IDS[m] for m in members)
    votes = d.factory.votes(ids, WINDOW, voters, epoch=election_epoch(d.doc) if epoch is None else epoch)
    return {"members": ids, "members_hash": members_hash(ids), "votes": votes}


def guard_reasons(d: Driver, transition: str, inputs: dict[str, Any]) -> str:
    err = d.reject(d.body(transition, inputs), "guard_failed")
    assert err.failing_guard == "quorum"
    return err.reason


def test_a_vote_cast_in_another_election_is_refused() -> None:
    d = Driver().boot()
    d.submit("Council_ProfilesLoaded")
    now = election_epoch(d.doc)
    reason = guard_reasons(d, "Council_QuorumCert", quorum(d, COUNCIL, COUNCIL, epoch=now - 1))
    assert f"cast in election epoch {now - 1}; this election is epoch {now}" in reason
    d.submit("Council_QuorumCert", quorum(d, COUNCIL, COUNCIL))


def test_an_old_certificate_sent_again_after_an_eject_is_rejected() -> None:
    d = Driver().boot()
    d.submit("Council_ProfilesLoaded")
    certificate = quorum(d, COUNCIL, COUNCIL)
    d.submit("Council_QuorumCert", certificate)
    d.submit("Council_Eject", {"member": IDS["council-1"], "reason": "compromised"})
    assert d.doc["council"]["phase"] == "ELECT" and d.doc["council"]["ejected"] == [IDS["council-1"]]
    reason = guard_reasons(d, "Council_QuorumCert", certificate)  # the same votes, in a fresh proposal
    assert "cast in election epoch" in reason and "ejected from the council" in reason
    d.submit("Council_QuorumCert", quorum(d, ["council-2", "council-3"], ["council-2", "council-3"]))
    assert d.doc["council"]["members"] == sorted([IDS["council-2"], IDS["council-3"]])


def test_a_recovery_certificate_is_not_valid_in_the_next_recovery() -> None:
    d = Driver().execution()
    d.submit("Execution_QuorumLost", {"reason": "partition"})
    restored = {**quorum(d, COUNCIL, COUNCIL), "region_hashes": d.factory.region_hashes(d.doc)}
    d.submit("Recovery_QuorumRestored", restored)
    d.submit("Execution_QuorumLost", {"reason": "partition again"})
    restored["region_hashes"] = d.factory.region_hashes(d.doc)  # only the votes are old
    reason = guard_reasons(d, "Recovery_QuorumRestored", restored)
    assert "cast in election epoch" in reason


def test_an_ejected_member_can_neither_vote_nor_be_elected_again() -> None:
    d = Driver().boot().elect()
    d.submit("Council_Eject", {"member": IDS["council-1"], "reason": "compromised"})
    reason = guard_reasons(d, "Council_QuorumCert", quorum(d, COUNCIL, ["council-2", "council-3"]))
    assert f"proposed member(s) ejected from the council: {IDS['council-1']}" in reason
    reason = guard_reasons(d, "Council_QuorumCert", quorum(d, ["council-2"], ["council-1", "council-2"]))
    assert f"voter {IDS['council-1']} was ejected from the council" in reason
    # The majority is of the eligible: two of the two council identities not ejected.
    reason = guard_reasons(d, "Council_QuorumCert", quorum(d, ["council-2"], ["council-2"]))
    assert "1 valid votes of 2 eligible; 2 needed" in reason


def test_planning_the_roles_again_makes_the_ejected_eligible_again() -> None:
    d = Driver().boot()
    snap = d.engine.snapshot().model_copy(deep=True)
    snap.document["council"]["ejected"] = [IDS["council-1"]]  # as if PLAN_ROLES came again after an ejection
    d.engine = Engine(d.chart, snap)
    d.submit("Council_ProfilesLoaded")
    assert d.doc["council"]["ejected"] == []


def test_a_vote_without_the_election_epoch_is_schema() -> None:
    d = Driver().boot()
    d.submit("Council_ProfilesLoaded")
    ids = sorted(IDS.values())
    old_votes = d.factory.votes(ids, WINDOW)  # the old form: no epoch
    with pytest.raises(ProposalError) as err:
        d.send(d.body("Council_QuorumCert", {"members": ids, "members_hash": members_hash(ids), "votes": old_votes}))
    assert err.value.code == "schema" and "epoch" in err.value.reason


def test_projects_started_before_the_election_epoch_keep_the_old_votes() -> None:
    d = Driver(config=EngineConfig(election_epoch=False)).boot()
    d.submit("Council_ProfilesLoaded")
    ids = sorted(IDS.values())
    certificate = {"members": ids, "members_hash": members_hash(ids), "votes": d.factory.votes(ids, WINDOW)}
    d.reject(d.body("Council_QuorumCert", quorum(d, COUNCIL, COUNCIL)), "schema")  # they do not know `epoch`
    d.submit("Council_QuorumCert", certificate)
