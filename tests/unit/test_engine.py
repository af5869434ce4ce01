"""The engine: every rejection code of the contract, exactly-once answers, decision records, snapshots, genesis."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from swoosh.api.client import Signers
from swoosh.guards.outcome import failed
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.decision import RECORD_FIELDS, verify_chain
from swoosh.workflows.document import genesis, phases, state_hash, validate_document
from swoosh.workflows.engine import Admitted, Engine, EngineConfig, EngineSnapshot
from swoosh.workflows.errors import REJECTION_CODES, ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.statechart import default_statechart
from tests.unit.helpers import NOW, PROJECT, SIGNERS, STRANGER, WINDOW, Driver, good_facts, h, resign

# ---------------------------------------------------------------------- rejection codes


def test_engine_rejection_codes_are_the_contract_ones() -> None:
    assert set(REJECTION_CODES) == {
        "schema", "bad_signature", "unauthorized_signer", "unknown_transition", "invalid_transition",
        "inputs_hash_mismatch", "stale_state_hash", "hlc_regression", "hlc_too_far_ahead", "guard_failed",
        "quarantined", "terminated",
    }  # fmt: skip


def test_engine_schema_unknown_field() -> None:
    d = Driver()
    body = {**d.body("Boot_ConfigOk"), "urgency": "high"}
    assert "urgency" in d.reject(body, "schema").reason


def test_engine_schema_float_in_inputs() -> None:
    d = Driver()
    d.reject(d.body("Boot_ConfigOk", {"config_hash": 1.5}), "schema")


def test_engine_schema_header_conflict() -> None:
    d = Driver()
    d.reject(d.body("Boot_ConfigOk"), "schema", header_fields={"idem_key": "another-key"})


def test_engine_header_fields_fill_absent_body_fields() -> None:
    d = Driver()
    body = {k: v for k, v in d.body("Boot_ConfigOk").items() if k not in ("idem_key", "hlc", "window_id")}
    body = resign(d.key("operator"), body)
    hlc = HLC(NOW, 77).format()
    answer = d.send(body, header_fields={"idem_key": "legacy-1", "hlc": hlc, "window_id": WINDOW})
    assert (answer.idem_key, answer.hlc) == ("legacy-1", hlc)
    assert d.records[-1]["window_id"] == WINDOW


def test_engine_schema_other_project() -> None:
    d = Driver()
    other = Driver(project_id="other")
    assert "for project other" in d.reject(other.body("Boot_ConfigOk"), "schema").reason


def test_engine_schema_inputs_do_not_fit_the_transition() -> None:
    d = Driver()
    assert "takes no input(s) colour" in d.reject(d.body("Boot_ConfigOk", {"colour": "red"}), "schema").reason


def test_engine_schema_missing_required_input() -> None:
    d = Driver().boot()
    assert "needs input sources" in d.reject(d.body("Ingestion_SourcesResolved", {}), "schema").reason


@pytest.mark.parametrize(
    ("transition", "inputs"),
    [
        ("Ingestion_SourcesResolved", {"sources": []}),
        ("Ingestion_BytesOk", {"bytes_hash": "nope", "byte_count": 1}),
        ("Ingestion_BytesOk", {"bytes_hash": h(1), "byte_count": -1}),
        ("Ingestion_BytesOk", {"bytes_hash": h(1), "byte_count": True}),
        ("Ingestion_CorpusBuilt", {"content_hash": h(1), "version": 0}),
        ("Council_McpGreen", {"tool_pins": {}}),
        ("Council_Eject", {"member": "someone", "reason": "x"}),
        ("Control_Pause", {"reason": ""}),
        ("Execution_AllReady", {"region_hashes": {"ingestion": h(1)}}),
        ("Council_QuorumCert", {"members": [], "members_hash": h(1), "votes": []}),
        ("Execution_ApprovalsThreshold", {"approvals": [{"approver": "x"}]}),
    ],
)
def test_engine_schema_input_of_wrong_type(transition: str, inputs: dict[str, Any]) -> None:
    d = Driver()
    assert d.reject(d.body(transition, inputs), "schema").reason.startswith(("inputs.", transition))


def test_engine_unknown_transition() -> None:
    d = Driver()
    assert "Boot_Reboot" in d.reject(d.body("Boot_Reboot", {}), "unknown_transition").reason


def test_engine_bad_signature() -> None:
    d = Driver()
    body = d.body("Boot_ConfigOk")
    body["idem_key"] = "tampered-after-signing"
    d.reject(body, "bad_signature")


def test_engine_unauthorized_unknown_signer() -> None:
    d = Driver()
    body = resign(STRANGER, {**d.body("Boot_ConfigOk"), "signer": signer_id(STRANGER.public_key())})
    assert "is not an identity of project demo" in d.reject(body, "unauthorized_signer").reason


def test_engine_unauthorized_missing_role() -> None:
    d = Driver()
    body = d.body("Boot_ConfigOk", signer="ingestion")
    assert "needs one of the roles operator, boot" in d.reject(body, "unauthorized_signer").reason


def test_engine_unauthorized_system_transition() -> None:
    d = Driver().boot()
    d.run("License_Throttled")
    body = d.body("License_GraceExpired", {}, signer="operator")
    assert "proposed by SWOOSH itself" in d.reject(body, "unauthorized_signer").reason


def test_engine_star_role_may_propose_anything() -> None:
    d = Driver(signers=Signers.generate({"root": ("*",)}))
    d.submit("Boot_ConfigOk", signer="root")
    assert d.doc["control"]["top"] == "LICENSE_CHECK"


def test_engine_invalid_transition_from_wrong_state() -> None:
    d = Driver()
    assert "allowed from LICENSE_CHECK" in d.reject(d.body("Boot_Licensed"), "invalid_transition").reason


def test_engine_inputs_hash_mismatch() -> None:
    d = Driver()
    body = resign(d.key("operator"), {**d.body("Boot_ConfigOk"), "inputs_hash": h("other inputs")})
    d.reject(body, "inputs_hash_mismatch")


def test_engine_stale_state_hash() -> None:
    d = Driver()
    body = resign(d.key("operator"), {**d.body("Boot_ConfigOk"), "current_state_hash": h("old head")})
    assert d.engine.head_hash in d.reject(body, "stale_state_hash").reason


def test_engine_hlc_regression() -> None:
    d = Driver()
    d.now_ms = NOW + 1_000
    d.submit("Boot_ConfigOk")
    d.reject(d.body("Boot_Licensed", hlc=HLC(NOW, 5).format()), "hlc_regression")


def test_engine_hlc_regression_equal_hlc_smaller_tie_break() -> None:
    d = Driver()
    first = d.submit("Boot_ConfigOk", idem_key="m-key")
    d.reject(d.body("Control_Pause", hlc=first.hlc, idem_key="a-key", signer="operator"), "hlc_regression")


def test_engine_equal_hlc_larger_tie_break_is_accepted() -> None:
    d = Driver()
    first = d.submit("Boot_ConfigOk", idem_key="m-key")
    answer = d.submit("Control_Pause", hlc=first.hlc, idem_key="z-key", signer="operator")
    assert answer.hlc == first.hlc and answer.index == 2


def test_engine_hlc_too_far_ahead() -> None:
    d = Driver(config=EngineConfig(max_offset_ms=1_000))
    err = d.reject(d.body("Boot_ConfigOk", hlc=HLC(NOW + 1_001, 0).format()), "hlc_too_far_ahead")
    assert "1001 ms ahead (max 1000 ms)" in err.reason


def test_engine_hlc_at_max_offset_is_accepted() -> None:
    d = Driver(config=EngineConfig(max_offset_ms=1_000))
    assert d.submit("Boot_ConfigOk", hlc=HLC(NOW + 1_000, 0).format()).index == 1


def test_engine_hlc_with_trailing_newline_is_schema() -> None:
    d = Driver()
    d.reject(d.body("Boot_ConfigOk", hlc=HLC(NOW, 0).format() + "\n"), "schema")


def test_engine_guard_failed_names_the_guard() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk")
    err = d.reject(d.body("Boot_Licensed"), "guard_failed", facts=good_facts(license=None))
    assert err.failing_guard == "license"
    assert "no licence fact" in err.reason


def test_engine_guard_failed_first_failing_guard_in_chart_order() -> None:
    d = Driver().execution()
    d.run("Execution_PlanLocked", "Execution_BeatReviewGate")
    err = d.reject(d.body("Execution_ApprovalsThreshold"), "guard_failed", facts=good_facts(beat=None))
    assert err.failing_guard == "window"


def test_engine_guard_not_evaluated_is_guard_failed() -> None:
    d = Driver().boot()
    admitted = d.engine.admit(ProposalRequest(body=d.body("Ingestion_SourcesResolved")), NOW)
    assert isinstance(admitted, Admitted)
    with pytest.raises(ProposalError) as err:
        d.engine.apply(admitted, [], NOW)
    assert (err.value.code, err.value.failing_guard) == ("guard_failed", "policy")


def test_engine_guard_outcome_not_ok_is_guard_failed() -> None:
    d = Driver().boot()
    admitted = d.engine.admit(ProposalRequest(body=d.body("Ingestion_SourcesResolved")), NOW)
    assert isinstance(admitted, Admitted)
    before = d.engine.head_hash
    with pytest.raises(ProposalError) as err:
        d.engine.apply(admitted, [failed("policy", "breach: x")], NOW)
    assert err.value.reason == "policy: breach: x" and d.engine.head_hash == before


def test_engine_quarantined() -> None:
    d = Driver().boot()
    d.submit("Policy_Quarantine", {"reason": "leak"})
    assert "(leak)" in d.reject(d.body("Ingestion_SourcesResolved"), "quarantined").reason


def test_engine_terminated() -> None:
    d = Driver().boot()
    d.run("Policy_Quarantine", "Policy_ConfirmedBlock")
    for name in ("Policy_Release", "Control_Pause", "Boot_ConfigOk"):
        d.reject(d.body(name), "terminated")


def test_engine_rejected_answer_shape() -> None:
    d = Driver()
    err = d.reject(d.body("Boot_Licensed"), "invalid_transition")
    answer = Rejected.of(err, d.engine.head_hash).model_dump()
    assert answer == {
        "accepted": False,
        "error": "invalid_transition",
        "reason": err.reason,
        "failing_guard": None,
        "guards": [],
        "head_hash": d.engine.head_hash,
        "success": False,
        "state_hash": d.engine.head_hash,
        "quarantined": False,
    }


def test_engine_answers_carry_swoosh_go_keys() -> None:
    d = Driver()
    first = d.submit("Boot_ConfigOk")
    assert (first.success, first.state_hash, first.quarantined) == (True, first.state_post_hash, False)
    d.submit("Boot_Licensed")
    # A duplicate says where the head is now, not where the original left it.
    again = d.engine.admit(ProposalRequest(body=d.bodies[0]), NOW)
    assert isinstance(again, Accepted) and again.duplicate
    assert again.state_post_hash == first.state_post_hash and again.state_hash == d.engine.head_hash
    quarantined = d.submit("Policy_Quarantine", {"reason": "leak"})
    assert quarantined.quarantined and quarantined.state_hash == d.engine.head_hash
    err = d.reject(d.body("Ingestion_SourcesResolved"), "quarantined")
    rejected = Rejected.of(err, d.engine.head_hash, quarantined=d.engine.top == "QUARANTINED")
    assert (rejected.success, rejected.state_hash, rejected.quarantined) == (False, d.engine.head_hash, True)


def test_answers_recorded_before_the_go_keys_read_with_them() -> None:
    d = Driver()
    answer = d.submit("Boot_ConfigOk").model_dump()
    for key in ("success", "state_hash", "quarantined"):
        del answer[key]
    old = Accepted.model_validate(answer)
    assert old.success and old.state_hash == old.state_post_hash and not old.quarantined


def test_engine_apply_rechecks_the_head() -> None:
    d = Driver()
    first = d.engine.admit(ProposalRequest(body=d.body("Boot_ConfigOk")), NOW)
    second = d.engine.admit(ProposalRequest(body=d.body("Control_Pause")), NOW)
    assert isinstance(first, Admitted) and isinstance(second, Admitted)
    d.engine.apply(first, [], NOW)
    before = d.engine.head_hash
    with pytest.raises(ProposalError) as err:
        d.engine.apply(second, [], NOW)
    assert err.value.code == "stale_state_hash" and d.engine.head_hash == before


# ---------------------------------------------------------------------- exactly-once


def test_engine_duplicate_returns_original_answer() -> None:
    d = Driver().boot()
    body = d.body("Ingestion_SourcesResolved")
    original = d.send(body)
    d.submit("Ingestion_BytesOk")
    head = d.engine.head_hash
    again = d.send(body)
    assert again.duplicate is True and original.duplicate is False
    assert (again.index, again.state_post_hash, again.dr_hash) == (
        original.index,
        original.state_post_hash,
        original.dr_hash,
    )
    assert d.engine.head_hash == head and d.engine.index == original.index + 1


def test_engine_duplicate_with_fresh_hlc_and_head_is_still_duplicate() -> None:
    d = Driver().boot()
    original = d.submit("Ingestion_SourcesResolved", idem_key="once")
    d.submit("Ingestion_BytesOk")
    head = d.engine.head_hash
    again = d.submit("Ingestion_SourcesResolved", idem_key="once")
    assert again.duplicate and again.index == original.index and d.engine.head_hash == head


def test_engine_duplicate_is_answered_even_after_termination() -> None:
    d = Driver().boot()
    body = d.body("Policy_Quarantine")
    original = d.send(body)
    d.submit("Policy_ConfirmedBlock")
    assert d.send(body).index == original.index


def test_engine_same_idem_key_different_content_is_invalid_transition() -> None:
    d = Driver().boot()
    d.submit("Ingestion_SourcesResolved", idem_key="shared")
    err = d.reject(d.body("Council_ProfilesLoaded", idem_key="shared"), "invalid_transition")
    assert "idem_key shared was already used" in err.reason


def test_engine_same_idem_key_different_inputs_is_invalid_transition() -> None:
    d = Driver().boot()
    d.submit("Ingestion_SourcesResolved", {"sources": ["a"]}, idem_key="shared")
    d.reject(d.body("Ingestion_SourcesResolved", {"sources": ["b"]}, idem_key="shared"), "invalid_transition")


def pause_resume(d: Driver, times: int) -> None:
    for _ in range(times):
        d.run("Control_Pause", "Control_Resume")


def test_engine_idem_window_evicts_oldest() -> None:
    d = Driver(config=EngineConfig(idem_window=16))
    first = d.body("Boot_ConfigOk")
    d.send(first)
    pause_resume(d, 8)  # 17 accepted in all: the first falls out of the window
    assert d.engine.seen(first["idem_key"]) is None
    assert d.engine.seen(d.bodies[1]["idem_key"]) is not None
    d.reject(first, "invalid_transition")  # no longer answered as a duplicate


def test_engine_idem_window_keeps_the_last_entries() -> None:
    d = Driver(config=EngineConfig(idem_window=16))
    d.submit("Boot_ConfigOk")
    pause_resume(d, 10)
    kept = [b["idem_key"] for b in d.bodies if d.engine.seen(b["idem_key"]) is not None]
    assert kept == [b["idem_key"] for b in d.bodies[-16:]]
    assert d.send(d.bodies[-16]).duplicate


def test_engine_config_refuses_tiny_idem_window() -> None:
    with pytest.raises(ValueError):
        EngineConfig(idem_window=15)


def test_engine_reserves_the_system_idem_key_prefix() -> None:
    """SWOOSH's own transitions use `system:` idem keys; a caller cannot, so neither can overwrite the other."""
    d = Driver().boot()
    with pytest.raises(ProposalError) as err:
        d.engine.admit(ProposalRequest(body=d.body("Control_Pause", idem_key="system:License_GraceExpired:9")), NOW)
    assert err.value.code == "schema" and "reserved" in err.value.reason


# ---------------------------------------------------------------------- answers and decision records


def test_engine_accepted_answer_fields() -> None:
    d = Driver()
    pre = d.engine.head_hash
    answer = d.submit("Boot_ConfigOk")
    assert isinstance(answer, Accepted)
    assert (answer.accepted, answer.duplicate, answer.project_id, answer.transition) == (
        True,
        False,
        PROJECT,
        "Boot_ConfigOk",
    )
    assert answer.state_pre_hash == pre and answer.state_post_hash == d.engine.head_hash == state_hash(d.doc)
    assert answer.decision_record == d.records[-1] and answer.dr_hash == d.records[-1]["dr_hash"]


def test_engine_accepted_answer_lists_guards() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk")
    answer = d.submit("Boot_Licensed")
    assert [(g.guard, g.ok) for g in answer.guards] == [("license", True)]


def test_engine_decision_record_fields() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk", evidence=["bubble://dr/1"])
    record = d.records[-1]
    assert set(record) == set(RECORD_FIELDS)
    assert record["index"] == 1 and record["prev_dr_hash"] is None
    assert record["inputs_hash"] == content_hash(d.bodies[-1]["inputs"])
    assert record["evidence"] == ["bubble://dr/1"] and record["window_id"] == WINDOW
    assert record["dr_hash"] == content_hash({k: v for k, v in record.items() if k != "dr_hash"})
    agent = SIGNERS.id("operator").removeprefix("hmmm:pubkey:")[:16]
    assert record["ucxl"] == f"ucxl://{agent}:operator@demo:Boot_ConfigOk/*~1/decisions/1"


def test_engine_decision_record_keeps_the_legacy_backlink_for_projects_started_with_it() -> None:
    d = Driver(config=EngineConfig(ucxl_backlink="legacy"))
    d.submit("Boot_ConfigOk")
    agent = SIGNERS.id("operator").removeprefix("hmmm:pubkey:")[:16]
    segment = d.records[-1]["hlc"].replace("+00:00", "Z").replace("#", "~")
    assert d.records[-1]["ucxl"] == f"ucxl://{agent}:operator@demo:Boot_ConfigOk/{segment}/decisions/1"


def test_engine_snapshot_from_before_the_backlink_setting_reads_as_legacy() -> None:
    d = Driver()
    dumped = d.engine.snapshot().model_dump(mode="json")
    del dumped["config"]["ucxl_backlink"]
    assert EngineSnapshot.model_validate(dumped).config.ucxl_backlink == "legacy"
    assert EngineSnapshot.model_validate(d.engine.snapshot().model_dump(mode="json")).config.ucxl_backlink == "chorus"
    assert EngineConfig().ucxl_backlink == "chorus"


def test_engine_decision_record_keeps_system_inputs_only_for_system_transitions() -> None:
    d = Driver().boot()
    d.run("License_Throttled")
    d.system("License_GraceExpired")
    assert d.records[-2]["system_inputs"] is None
    assert d.records[-1]["system_inputs"] == {}


def test_engine_decision_record_redacts_secrets() -> None:
    d = Driver()
    secret = "ghp_" + "z" * 36
    d.submit("Control_Pause", {"reason": f"rotated {secret}"}, evidence=[f"note {secret}"])
    record = d.records[-1]
    assert secret not in str(record)
    assert "[REDACTED]" in record["justification"] and "[REDACTED]" in record["evidence"][0]


def test_engine_decision_records_chain() -> None:
    d = Driver().execution().cycle()
    assert len(d.records) == d.engine.index
    assert verify_chain(d.records) is None
    assert all(r["prev_dr_hash"] == p["dr_hash"] for p, r in zip(d.records, d.records[1:], strict=False))
    assert d.engine.dr_head == d.records[-1]["dr_hash"]


def test_engine_decision_chain_continues_from_a_given_head() -> None:
    d = Driver().boot()
    assert verify_chain(d.records[1:], prev_dr_hash=d.records[0]["dr_hash"]) is None


def test_verify_chain_reports_tampered_record() -> None:
    d = Driver().boot().ingest()
    records = copy.deepcopy(d.records)
    records[3]["signer"] = SIGNERS.id("operator")
    assert verify_chain(records) == "record 3 (index 4): dr_hash does not match its content"


def test_verify_chain_reports_broken_link() -> None:
    d = Driver().boot().ingest()
    records = [*d.records[:2], *d.records[3:]]
    assert verify_chain(records) == "record 2 (index 4): prev_dr_hash does not link to the record before"


def test_verify_chain_reports_wrong_start() -> None:
    d = Driver().boot()
    assert verify_chain(d.records, prev_dr_hash=h("elsewhere")) == (
        "record 0 (index 1): prev_dr_hash does not link to the record before"
    )


def test_verify_chain_reports_missing_field() -> None:
    d = Driver().boot()
    records = copy.deepcopy(d.records)
    del records[1]["ucxl"]
    assert verify_chain(records) == "record 1 (index 2): missing field(s) ucxl"


def test_verify_chain_reports_index_gap() -> None:
    d = Driver().boot()
    records = copy.deepcopy(d.records)
    records[1]["index"] = 5
    body = {k: v for k, v in records[1].items() if k != "dr_hash"}
    records[1]["dr_hash"] = content_hash(body)
    assert verify_chain(records) == "record 1: index 5 does not follow 1"


# ---------------------------------------------------------------------- document, snapshot, genesis


def test_engine_document_validates_and_has_no_floats_throughout() -> None:
    d = Driver()
    d.check_document()
    for name in ("Boot_ConfigOk", "Boot_Licensed"):
        d.submit(name)
        d.check_document()
    d.ingest().elect().provision()
    d.check_document()
    d.submit("Execution_AllReady")
    d.cycle()
    d.run("License_Throttled", "Execution_QuorumLost", "Policy_Quarantine", "Policy_Release", "Recovery_QuorumRestored")
    d.check_document()
    assert sorted(d.doc) == sorted(
        ["meta", "boot", "ingestion", "council", "environment", "execution", "control", "policy", "epoch", "hlc_last"]
    )


def test_engine_snapshot_resumes_with_same_hash_and_dedupe() -> None:
    d = Driver().execution()
    snapshot = EngineSnapshot.model_validate_json(d.engine.snapshot().model_dump_json())
    resumed = Engine(d.chart, snapshot)
    assert resumed.head_hash == d.engine.head_hash and resumed.dr_head == d.engine.dr_head
    old = d.bodies[3]
    dup = resumed.admit(ProposalRequest(body=old), d.now_ms)
    assert isinstance(dup, Accepted) and dup.duplicate and dup.index == 4


def test_engine_snapshot_resumed_engine_decides_identically() -> None:
    d = Driver().execution()
    resumed = Engine(d.chart, EngineSnapshot.model_validate_json(d.engine.snapshot().model_dump_json()))
    body = d.body("Execution_PlanLocked")
    admitted = resumed.admit(ProposalRequest(body=body), d.now_ms)
    assert isinstance(admitted, Admitted)
    theirs, their_record = resumed.apply(admitted, d.outcomes(admitted), d.now_ms)
    ours = d.send(body)
    assert theirs.state_post_hash == ours.state_post_hash
    assert their_record == d.records[-1]


def test_engine_snapshot_carries_config() -> None:
    d = Driver(config=EngineConfig(idem_window=32, grace_ms=7))
    assert d.engine.snapshot().config == EngineConfig(idem_window=32, grace_ms=7)


def test_genesis_is_deterministic_for_same_keyring_and_project() -> None:
    chart = default_statechart()
    assert state_hash(genesis(chart, PROJECT, SIGNERS.keyring())) == state_hash(
        genesis(chart, PROJECT, SIGNERS.keyring())
    )


def test_genesis_ignores_keyring_order() -> None:
    chart = default_statechart()
    ring = SIGNERS.keyring()
    reversed_ring = Keyring(signers=tuple(reversed(ring.signers)))
    assert state_hash(genesis(chart, PROJECT, ring)) == state_hash(genesis(chart, PROJECT, reversed_ring))


def test_genesis_differs_per_project() -> None:
    chart = default_statechart()
    assert state_hash(genesis(chart, "a", SIGNERS.keyring())) != state_hash(genesis(chart, "b", SIGNERS.keyring()))


def test_genesis_differs_per_keyring() -> None:
    chart = default_statechart()
    assert state_hash(genesis(chart, PROJECT, SIGNERS.keyring())) != state_hash(
        genesis(chart, PROJECT, Signers.generate().keyring())
    )


def test_genesis_document_shape() -> None:
    doc = genesis(default_statechart(), PROJECT, SIGNERS.keyring())
    validate_document(doc)
    assert doc["meta"]["index"] == 0 and doc["hlc_last"] is None
    assert doc["meta"]["schema_hash"] == default_statechart().schema_hash
    assert doc["boot"]["identities"] == SIGNERS.keyring().identities()
    assert phases(doc) == {
        "top": "UNINITIALIZED",
        "boot": "UNINITIALIZED",
        "ingestion": None,
        "council": None,
        "environment": None,
        "execution": "IDLE",
        "license": "OK",
    }


def test_validate_document_refuses_floats() -> None:
    doc = genesis(default_statechart(), PROJECT, SIGNERS.keyring())
    doc["execution"]["cycle"] = 1.0
    with pytest.raises(ValueError):
        validate_document(doc)


def test_validate_document_refuses_unknown_section() -> None:
    doc = {**genesis(default_statechart(), PROJECT, SIGNERS.keyring()), "extra": {}}
    with pytest.raises(ValueError):
        validate_document(doc)
