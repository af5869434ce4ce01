"""Each reducer rule, driven the way the workflow drives it (admit → guards → apply), plus the pure reduce()."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swoosh.guards.council import members_hash
from swoosh.guards.readiness import region_hashes
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.document import EPOCH_REGIONS
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.reducer import Step, clone, reduce
from swoosh.workflows.statechart import SYSTEM_SIGNER, default_statechart
from tests.unit.helpers import NOW, SIGNERS, WINDOW, Driver, h

COUNCIL_IDS = sorted(SIGNERS.id(n) for n in ("council-1", "council-2", "council-3"))


def phase(d: Driver) -> dict[str, Any]:
    doc = d.doc
    return {
        "top": doc["control"]["top"],
        "ingestion": doc["ingestion"]["phase"],
        "council": doc["council"]["phase"],
        "environment": doc["environment"]["phase"],
        "execution": doc["execution"]["phase"],
        "license": doc["control"]["license"]["phase"],
    }


def invalid(d: Driver, transition: str, inputs: dict[str, Any] | None = None) -> ProposalError:
    """Submit; the engine must answer invalid_transition and change nothing."""
    return d.reject(d.body(transition, inputs), "invalid_transition")


# ---------------------------------------------------------------------- boot


def test_reducer_boot_config_ok_records_config_hash() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk", {"config_hash": h("cfg")})
    assert d.doc["control"]["top"] == "LICENSE_CHECK"
    assert d.doc["boot"]["phase"] == "LICENSE_CHECK"
    assert d.doc["boot"]["config_hash"] == h("cfg")


def test_reducer_boot_config_ok_takes_empty_inputs() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk", {})
    assert d.doc["control"]["top"] == "LICENSE_CHECK" and d.doc["boot"]["config_hash"] is None


def test_reducer_boot_licensed_enters_the_three_regions() -> None:
    d = Driver()
    d.submit("Boot_ConfigOk")
    assert (d.doc["ingestion"]["phase"], d.doc["council"]["phase"], d.doc["environment"]["phase"]) == (None, None, None)
    d.submit("Boot_Licensed")
    assert phase(d) == {
        "top": "PROJECT_LIFECYCLE",
        "ingestion": "DISCOVER",
        "council": "PLAN_ROLES",
        "environment": "ALLOCATE",
        "execution": "IDLE",
        "license": "OK",
    }
    assert d.doc["boot"]["phase"] == "LICENSED"
    assert d.doc["boot"]["license"] == {"status": "valid", "license_id": "L-1"}


def test_reducer_boot_license_failed_terminates() -> None:
    d = Driver()
    d.run("Boot_ConfigOk")
    d.submit("Boot_LicenseFailed", {"reason": "no seat"})
    assert d.doc["control"]["top"] == "TERMINATED"
    assert d.doc["boot"]["phase"] == "FAILED" and d.doc["boot"]["license"]["status"] == "denied"
    assert d.doc["control"]["reason"] == "no seat"


# ---------------------------------------------------------------------- pause / resume


@pytest.mark.parametrize("stage", ["genesis", "boot", "lifecycle", "execution"])
def test_reducer_pause_resume_returns_where_it_was(stage: str) -> None:
    d = Driver()
    {"genesis": lambda: d, "boot": d.boot, "lifecycle": d.lifecycle, "execution": d.execution}[stage]()
    if stage == "execution":
        d.run("Execution_PlanLocked")
    before = phase(d)
    d.submit("Control_Pause", {"reason": "maintenance"})
    assert d.doc["control"]["top"] == "PAUSED"
    assert d.doc["control"]["paused_from"] == before["top"]
    assert d.doc["control"]["reason"] == "maintenance"
    d.submit("Control_Resume", {"reason": "done"})
    assert phase(d) == before
    assert d.doc["control"]["paused_from"] is None and d.doc["control"]["reason"] is None


def test_reducer_pause_freezes_regions() -> None:
    d = Driver().boot()
    d.submit("Control_Pause")
    assert "it is PAUSED" in invalid(d, "Ingestion_SourcesResolved").reason


def test_reducer_pause_twice_is_invalid() -> None:
    d = Driver()
    d.submit("Control_Pause")
    assert "is not allowed" in invalid(d, "Control_Pause").reason


def test_reducer_resume_without_pause_is_invalid() -> None:
    assert "is not allowed" in invalid(Driver(), "Control_Resume").reason


# ---------------------------------------------------------------------- quarantine


def test_reducer_quarantine_carries_rationale() -> None:
    d = Driver().execution()
    d.submit("Policy_Quarantine", {"reason": "exfiltration suspected"})
    pol = d.doc["policy"]
    assert d.doc["control"]["top"] == "QUARANTINED"
    assert pol == {**pol, "quarantined": True, "quarantined_from": "EXECUTION", "rationale": "exfiltration suspected"}
    assert pol["quarantine_count"] == 1


@pytest.mark.parametrize("transition", ["Execution_PlanLocked", "Control_Pause", "Policy_Quarantine", "Control_Resume"])
def test_reducer_quarantine_is_sticky(transition: str) -> None:
    d = Driver().execution()
    d.submit("Policy_Quarantine")
    err = d.reject(d.body(transition), "quarantined")
    assert "Policy_Release or Policy_ConfirmedBlock" in err.reason


def test_reducer_release_returns_where_it_was() -> None:
    d = Driver().execution()
    d.run("Execution_PlanLocked")
    before = phase(d)
    d.run("Policy_Quarantine", "Policy_Release")
    assert phase(d) == before
    assert d.doc["policy"]["quarantined"] is False and d.doc["policy"]["rationale"] is None
    assert d.doc["policy"]["quarantined_from"] is None


def test_reducer_quarantine_from_paused_releases_to_paused() -> None:
    d = Driver().boot()
    d.run("Control_Pause", "Policy_Quarantine", "Policy_Release")
    assert d.doc["control"]["top"] == "PAUSED"
    d.submit("Control_Resume")
    assert d.doc["control"]["top"] == "PROJECT_LIFECYCLE"


def test_reducer_confirmed_block_terminates() -> None:
    d = Driver().boot()
    d.submit("Policy_Quarantine")
    d.submit("Policy_ConfirmedBlock", {"reason": "confirmed leak"})
    assert d.doc["control"]["top"] == "TERMINATED"
    assert d.doc["policy"]["blocked"] is True and d.doc["policy"]["block_reason"] == "confirmed leak"


def test_reducer_release_outside_quarantine_is_invalid() -> None:
    assert "is not allowed" in invalid(Driver().boot(), "Policy_Release").reason


def test_reducer_ingestion_policy_violation_quarantines() -> None:
    d = Driver().boot()
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk")
    epochs = dict(d.doc["epoch"])
    d.submit("Ingestion_PolicyViolation", {"reason": "PII in corpus"})
    assert d.doc["control"]["top"] == "QUARANTINED"
    assert d.doc["policy"]["quarantined_from"] == "PROJECT_LIFECYCLE"
    assert d.doc["policy"]["rationale"] == "PII in corpus"
    assert d.doc["ingestion"]["validation"] == "policy_violation"
    assert d.doc["epoch"] == {**epochs, "ingestion": epochs["ingestion"] + 1}
    d.submit("Policy_Release")
    assert d.doc["control"]["top"] == "PROJECT_LIFECYCLE" and d.doc["ingestion"]["phase"] == "VALIDATE"


# ---------------------------------------------------------------------- ingestion index versions


def test_reducer_corpus_built_pins_content_hash_and_version() -> None:
    d = Driver().boot()
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk")
    d.submit("Ingestion_CorpusBuilt", {"content_hash": h("v1"), "version": 1})
    pin = {"content_hash": h("v1"), "version": 1}
    assert d.doc["ingestion"]["phase"] == "READY"
    assert d.doc["ingestion"]["pinned"] == pin and d.doc["ingestion"]["versions"] == [pin]


def reingest(d: Driver, version: int, label: str) -> None:
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk")
    d.submit("Ingestion_CorpusBuilt", {"content_hash": h(label), "version": version})


def test_reducer_pin_index_requires_a_higher_version() -> None:
    d = Driver().boot()
    reingest(d, 3, "v3")
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk")
    err = d.reject(d.body("Ingestion_CorpusBuilt", {"content_hash": h("v3b"), "version": 3}), "invalid_transition")
    assert "new version" in err.reason
    d.submit("Ingestion_CorpusBuilt", {"content_hash": h("v4"), "version": 4})
    assert d.doc["ingestion"]["pinned"]["version"] == 4


def test_reducer_rollback_returns_to_previous_version() -> None:
    d = Driver().boot()
    reingest(d, 1, "v1")
    reingest(d, 2, "v2")
    d.submit("Ingestion_RollbackIndex", {"reason": "v2 regressed"})
    assert d.doc["ingestion"]["phase"] == "READY"
    assert d.doc["ingestion"]["pinned"] == {"content_hash": h("v1"), "version": 1}


def test_reducer_rollback_aborts_reingestion() -> None:
    d = Driver().boot()
    reingest(d, 1, "v1")
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk")
    d.submit("Ingestion_RollbackIndex")
    ing = d.doc["ingestion"]
    assert ing["phase"] == "READY" and ing["pinned"] == {"content_hash": h("v1"), "version": 1}
    assert ing["bytes_hash"] is None and ing["schema_hash"] is None


def test_reducer_rollback_with_nothing_pinned_is_invalid() -> None:
    d = Driver().boot()
    d.run("Ingestion_SourcesResolved")
    err = d.reject(d.body("Ingestion_RollbackIndex"), "invalid_transition")
    assert "no index version has been pinned" in err.reason


def test_reducer_rollback_without_earlier_version_is_invalid() -> None:
    d = Driver().boot()
    reingest(d, 1, "v1")
    err = d.reject(d.body("Ingestion_RollbackIndex"), "invalid_transition")
    assert "no version pinned before version 1" in err.reason


def test_reducer_new_version_after_rollback_must_exceed_every_pinned_version() -> None:
    d = Driver().boot()
    reingest(d, 1, "v1")
    reingest(d, 2, "v2")
    d.submit("Ingestion_RollbackIndex")
    d.run("Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk")
    d.reject(d.body("Ingestion_CorpusBuilt", {"content_hash": h("v2b"), "version": 2}), "invalid_transition")


# ---------------------------------------------------------------------- council


def test_reducer_quorum_cert_elects_the_council() -> None:
    d = Driver().boot()
    d.run("Council_ProfilesLoaded", "Council_QuorumCert")
    council = d.doc["council"]
    assert council["phase"] == "TOOLING_SYNC"
    assert council["members"] == COUNCIL_IDS
    assert council["members_hash"] == members_hash(COUNCIL_IDS) == content_hash(COUNCIL_IDS)
    assert council["quorum_cert"] == {
        "members_hash": members_hash(COUNCIL_IDS),
        "voters": COUNCIL_IDS,
        "window_id": WINDOW,
    }


def test_reducer_mcp_green_pins_tools() -> None:
    d = Driver().boot().elect()
    assert d.doc["council"]["phase"] == "READY"
    assert d.doc["council"]["tooling"] == {"status": "green", "pins": {"git": "2.45.0", "pytest": "8.2.0"}}


def test_reducer_council_eject_removes_member_and_clears_cert() -> None:
    d = Driver().boot().elect()
    ejected = COUNCIL_IDS[0]
    d.submit("Council_Eject", {"member": ejected, "reason": "key compromised"})
    council = d.doc["council"]
    assert council["phase"] == "ELECT"
    assert council["members"] == COUNCIL_IDS[1:]
    assert council["members_hash"] == members_hash(COUNCIL_IDS[1:])
    assert council["quorum_cert"] is None
    assert council["tooling"] == {"status": "unknown", "pins": {}}
    assert council["ejected"] == [ejected]


def test_reducer_council_eject_non_member_is_invalid() -> None:
    d = Driver().boot().elect()
    err = d.reject(d.body("Council_Eject", {"member": SIGNERS.id("operator"), "reason": "x"}), "invalid_transition")
    assert "not an elected member" in err.reason


def test_reducer_council_reelection_after_eject() -> None:
    d = Driver().boot().elect()
    d.submit("Council_Eject", {"member": COUNCIL_IDS[0], "reason": "x"})
    d.submit("Council_QuorumCert", d.factory.quorum_inputs(WINDOW, members=COUNCIL_IDS[1:], state=d.doc))
    assert d.doc["council"]["quorum_cert"]["members_hash"] == members_hash(COUNCIL_IDS[1:])


# ---------------------------------------------------------------------- environment


def test_reducer_environment_amber_then_green() -> None:
    d = Driver().boot()
    d.run("Environment_CapacityOk", "Environment_Installed")
    d.submit("Environment_Amber", {"reason": "slow disk"})
    assert d.doc["environment"]["phase"] == "DEGRADED" and d.doc["environment"]["health"] == "amber"
    d.submit("Environment_Green")
    assert d.doc["environment"]["phase"] == "READY" and d.doc["environment"]["health"] == "green"


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_reducer_environment_deprovision_compensates(steps: int) -> None:
    d = Driver().boot()
    d.run(*["Environment_CapacityOk", "Environment_Installed", "Environment_Green"][:steps])
    d.submit("Environment_Deprovision", {"reason": "budget"})
    env = d.doc["environment"]
    assert env == {"phase": "ALLOCATE", "allocations": [], "assets": [], "health": "unknown"}


def test_reducer_environment_deprovision_from_allocate_is_invalid() -> None:
    assert "is not allowed" in invalid(Driver().boot(), "Environment_Deprovision").reason


# ---------------------------------------------------------------------- execution


def test_reducer_all_ready_pins_readiness() -> None:
    d = Driver().lifecycle()
    hashes = region_hashes(d.doc)
    d.submit("Execution_AllReady", {"region_hashes": hashes})
    assert d.doc["control"]["top"] == "EXECUTION" and d.doc["execution"]["phase"] == "PLAN"
    assert d.doc["execution"]["readiness"] == hashes


def test_reducer_execution_loop_counts_cycles() -> None:
    d = Driver().execution()
    d.cycle().cycle()
    assert d.doc["execution"]["cycle"] == 2
    assert d.doc["execution"]["phase"] == "PLAN"


def test_reducer_execution_loop_records_then_clears_cycle_data() -> None:
    d = Driver().execution()
    d.run("Execution_PlanLocked", "Execution_BeatReviewGate", "Execution_ApprovalsThreshold")
    ex = d.doc["execution"]
    assert ex["phase"] == "REVERB" and ex["plan_hash"] == h(("plan", 0))
    assert ex["approvals"] == COUNCIL_IDS and ex["work_evidence"] == ["ucxl://work/1"] and ex["window_id"] == WINDOW
    d.submit("Execution_NextWindow")
    ex = d.doc["execution"]
    assert (ex["plan_hash"], ex["approvals"], ex["work_evidence"], ex["cycle"]) == (None, [], None, 1)


def test_reducer_execution_steps_out_of_order_are_invalid() -> None:
    d = Driver().execution()
    assert "is not allowed" in invalid(d, "Execution_BeatReviewGate").reason


def test_reducer_regions_are_frozen_during_execution() -> None:
    d = Driver().execution()
    assert "it is EXECUTION" in invalid(d, "Environment_Deprovision").reason


def test_reducer_quorum_lost_then_restored() -> None:
    d = Driver().execution()
    d.run("Execution_PlanLocked")
    d.submit("Execution_QuorumLost", {"reason": "2 of 3 unreachable"})
    assert d.doc["control"]["top"] == "RECOVERY" and d.doc["execution"]["phase"] == "IDLE"
    assert d.doc["council"]["quorum_cert"] is None and d.doc["control"]["reason"] == "2 of 3 unreachable"
    hashes = region_hashes(d.doc)
    d.submit("Recovery_QuorumRestored")
    assert d.doc["control"]["top"] == "EXECUTION" and d.doc["execution"]["phase"] == "PLAN"
    assert d.doc["execution"]["readiness"] == hashes
    assert d.doc["council"]["quorum_cert"]["members_hash"] == d.doc["council"]["members_hash"]
    assert d.doc["control"]["reason"] is None


# ---------------------------------------------------------------------- licence grace


def test_reducer_license_throttled_sets_grace_deadline() -> None:
    d = Driver(config=EngineConfig(grace_ms=5_000)).boot()
    answer = d.submit("License_Throttled", {"reason": "quota"})
    assert d.doc["control"]["license"]["phase"] == "DEGRADED_GRACE"
    assert d.doc["control"]["license"]["grace_deadline_ms"] == HLC.parse(answer.hlc).wall_ms + 5_000


def test_reducer_license_restored_clears_grace() -> None:
    d = Driver().boot()
    d.run("License_Throttled", "License_Restored")
    lic = d.doc["control"]["license"]
    assert lic == {"phase": "OK", "grace_deadline_ms": None, "external_comms": True}


def test_reducer_system_grace_expired() -> None:
    d = Driver().boot()
    d.run("License_Throttled")
    d.now_ms = NOW + 1_000
    answer = d.system("License_GraceExpired")
    assert d.doc["control"]["license"]["phase"] == "DEGRADED_EXPIRED"
    assert d.doc["control"]["license"]["external_comms"] is False
    assert d.doc["boot"]["license"]["status"] == "expired"
    assert d.doc["meta"]["last_signer"] == SYSTEM_SIGNER
    assert answer.hlc == HLC(NOW + 1_000, 0).format()
    assert d.records[-1]["signer"] == SYSTEM_SIGNER and d.records[-1]["ucxl"].startswith("ucxl://swoosh:system@demo:")
    d.submit("License_Restored")
    assert d.doc["control"]["license"]["external_comms"] is True


def test_reducer_system_hlc_follows_last_when_clock_lags() -> None:
    d = Driver().boot()
    d.run("License_Throttled")
    last = HLC.parse(d.doc["hlc_last"])
    d.now_ms = last.wall_ms - 50
    answer = d.system("License_GraceExpired")
    assert HLC.parse(answer.hlc) == HLC(last.wall_ms, last.counter + 1)


def test_reducer_system_grace_expired_needs_grace() -> None:
    d = Driver().boot()
    with pytest.raises(ProposalError) as err:
        d.system("License_GraceExpired")
    assert err.value.code == "invalid_transition"


def test_reducer_system_transition_after_termination_is_terminated() -> None:
    d = Driver()
    d.run("Boot_ConfigOk")
    d.submit("Boot_LicenseFailed", {"reason": "denied"})
    with pytest.raises(ProposalError) as err:
        d.system("License_GraceExpired")
    assert err.value.code == "terminated"


# ---------------------------------------------------------------------- epochs


def test_reducer_epochs_advance_once_in_the_declared_region() -> None:
    d = Driver(config=EngineConfig(grace_ms=1))
    chart = default_statechart()
    sequence = [
        "Control_Pause", "Control_Resume", "Boot_ConfigOk", "Boot_Licensed",
        "Ingestion_SourcesResolved", "Ingestion_BytesOk", "Ingestion_SchemaOk", "Ingestion_CorpusBuilt",
        "Council_ProfilesLoaded", "Council_QuorumCert", "Council_McpGreen",
        "Environment_CapacityOk", "Environment_Installed", "Environment_Amber", "Environment_Green",
        "License_Throttled", "License_Restored", "Execution_AllReady", "Execution_PlanLocked",
        "Execution_BeatReviewGate", "Execution_ApprovalsThreshold", "Execution_NextWindow",
        "Policy_Quarantine", "Policy_Release", "Execution_QuorumLost", "Recovery_QuorumRestored",
    ]  # fmt: skip
    for name in sequence:
        before = dict(d.doc["epoch"])
        d.submit(name)
        region = chart.transitions[name].spec.epoch
        assert d.doc["epoch"] == {**before, region: before[region] + 1}, name
    assert set(d.doc["epoch"]) == set(EPOCH_REGIONS)
    assert sum(d.doc["epoch"].values()) == len(sequence) == d.engine.index


def test_reducer_index_and_hlc_last_follow_each_transition() -> None:
    d = Driver().boot()
    answer = d.submit("Ingestion_SourcesResolved")
    meta = d.doc["meta"]
    assert meta["index"] == answer.index == 3
    assert d.doc["hlc_last"] == answer.hlc
    assert meta["last_idem_key"] == answer.idem_key and meta["last_signer"] == SIGNERS.id("ingestion")


# ---------------------------------------------------------------------- pure reduce()


def step(inputs: dict[str, Any] | None = None) -> Step:
    chart = default_statechart()
    initials = {name: m.initial for name, m in chart.machines.items()}
    return Step(SIGNERS.id("operator"), "k-1", HLC(NOW, 0).format(), None, inputs or {}, 1_000, initials)


def test_reduce_does_not_modify_its_input() -> None:
    d = Driver()
    doc = clone(d.doc)
    snapshot = content_hash(doc)
    chart = default_statechart()
    reduce(chart, doc, chart.transitions["Boot_ConfigOk"], step())
    assert content_hash(doc) == snapshot


def test_reduce_is_deterministic() -> None:
    d = Driver()
    chart = default_statechart()
    t = chart.transitions["Control_Pause"]
    assert reduce(chart, d.doc, t, step({"reason": "x"})) == reduce(chart, clone(d.doc), t, step({"reason": "x"}))


def test_reduce_refuses_transition_from_wrong_state() -> None:
    chart = default_statechart()
    with pytest.raises(ProposalError) as err:
        reduce(chart, Driver().doc, chart.transitions["Boot_Licensed"], step())
    assert err.value.code == "invalid_transition"
    assert "allowed from LICENSE_CHECK" in err.value.reason


def test_reduce_refuses_region_transition_outside_its_top_state() -> None:
    chart = default_statechart()
    with pytest.raises(ProposalError) as err:
        reduce(chart, Driver().doc, chart.transitions["Environment_CapacityOk"], step({"allocations": ["a"]}))
    assert "needs the project in PROJECT_LIFECYCLE or RECOVERY" in err.value.reason


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2), inner, max_size=4),
        max_leaves=15,
    )
)
def test_clone_is_an_equal_copy_sharing_no_container(value: Any) -> None:
    copy = clone(value)
    assert copy == value

    def containers(v: Any) -> list[int]:
        if isinstance(v, dict):
            return [id(v), *(i for x in v.values() for i in containers(x))]
        if isinstance(v, list):
            return [id(v), *(i for x in v for i in containers(x))]
        return []

    assert not set(containers(copy)) & set(containers(value))
