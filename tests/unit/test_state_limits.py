"""The state document's byte budget and the caps on what callers copy into it (workflows/limits.py)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client import Signers
from swoosh.workflows import limits
from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.proposal import ProposalRequest
from tests.unit.helpers import NOW, Driver

LEGACY = EngineConfig(state_limits=False)


def _size(d: Driver) -> int:
    return len(canonical_json(d.doc))


def sources(total_bytes: int) -> list[str]:
    """A sources list of about `total_bytes` of JSON, in items of at most 4,096 characters."""
    n = max(1, total_bytes // 4000)
    return [f"git://example/{i}/".ljust(3990, "x") for i in range(n)]


# ---------------------------------------------------------------------- copied lists
def test_a_list_copied_into_the_document_is_capped() -> None:
    d = Driver().boot()
    err = d.reject(d.body("Ingestion_SourcesResolved", {"sources": sources(40_000)}), "schema")
    assert "inputs.sources is" in err.reason and f"at most {limits.COPIED_BYTES}" in err.reason
    d.submit("Ingestion_SourcesResolved", {"sources": sources(12_000)})


def test_projects_before_the_limits_copy_what_the_schema_allows() -> None:
    d = Driver(config=LEGACY).boot()
    d.submit("Ingestion_SourcesResolved", {"sources": sources(40_000)})
    assert _size(d) > 40_000


# ---------------------------------------------------------------------- the budget
def test_a_transition_that_would_pass_the_budget_is_refused_and_a_smaller_one_applies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = Driver().boot()
    monkeypatch.setattr(limits, "DOCUMENT_BUDGET", _size(d) + 6_000)
    err = d.reject(d.body("Ingestion_SourcesResolved", {"sources": sources(12_000)}), "invalid_transition")
    assert "over its budget" in err.reason and "smaller inputs" in err.reason
    d.submit("Ingestion_SourcesResolved", {"sources": sources(4_000)})  # never stuck: a smaller list fits


def test_growth_within_the_allowance_is_applied_even_at_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Driver().execution()
    monkeypatch.setattr(limits, "DOCUMENT_BUDGET", _size(d))  # the document is exactly at its budget
    before = _size(d)
    d.cycle()  # a plan hash, window ids, counters: the loop goes on
    assert before < _size(d) <= before + limits.GROWTH_ALLOWANCE


def test_the_budget_is_decided_at_admission_so_a_refusal_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validator refuses it: nothing reaches history, as for every other admission check."""
    d = Driver().boot()
    monkeypatch.setattr(limits, "DOCUMENT_BUDGET", _size(d) + 6_000)
    with pytest.raises(ProposalError) as err:
        d.engine.admit(ProposalRequest(body=d.body("Ingestion_SourcesResolved", {"sources": sources(12_000)})), NOW)
    assert err.value.code == "invalid_transition" and "over its budget" in err.value.reason


def test_swoosh_own_transitions_are_not_refused_by_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    d = Driver().boot()
    monkeypatch.setattr(limits, "DOCUMENT_BUDGET", _size(d))
    d.system("Policy_Quarantine", {"reason": "SHHH policy breach: " + "r" * 4000})
    assert d.doc["control"]["top"] == "QUARANTINED"


# ---------------------------------------------------------------------- fields that grew forever
def test_the_index_keeps_its_newest_versions() -> None:
    d = Driver().boot()
    for _ in range(limits.INDEX_VERSIONS_KEPT + 3):
        d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt")
    versions = [v["version"] for v in d.doc["ingestion"]["versions"]]
    assert versions == list(range(4, limits.INDEX_VERSIONS_KEPT + 4))
    d.submit("Ingestion_RollbackIndex", {"reason": "bad corpus"})
    assert d.doc["ingestion"]["pinned"]["version"] == limits.INDEX_VERSIONS_KEPT + 2


def test_the_index_versions_of_projects_before_the_limits_grow_as_before() -> None:
    d = Driver(config=LEGACY).boot()
    for _ in range(limits.INDEX_VERSIONS_KEPT + 1):
        d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt")
    assert len(d.doc["ingestion"]["versions"]) == limits.INDEX_VERSIONS_KEPT + 1


def test_a_project_has_at_most_the_identities_cap() -> None:
    d = Driver(signers=Signers.generate()).boot()
    room = limits.MAX_IDENTITIES - len(d.doc["boot"]["identities"])
    new = [
        {"id": signer_id(Ed25519PrivateKey.generate().public_key()), "roles": ["ingestion"]} for _ in range(room + 1)
    ]
    err = d.reject(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=new)), "invalid_transition")
    assert f"at most {limits.MAX_IDENTITIES}" in err.reason
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=new[:room])))
    assert len(d.doc["boot"]["identities"]) == limits.MAX_IDENTITIES


def test_an_identity_rotated_out_leaves_the_ejected_list() -> None:
    d = Driver().boot().elect()
    member = d.doc["council"]["members"][0]
    d.submit("Council_Eject", {"member": member, "reason": "compromised"})
    assert d.doc["council"]["ejected"] == [member]
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, remove=[member])))
    assert d.doc["council"]["ejected"] == []
