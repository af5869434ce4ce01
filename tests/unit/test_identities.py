"""Identity_Rotate: a rotated-out key is unauthorized, the majority of operators approves, an operator remains."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client import Signers
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.engine import EngineConfig, EngineSnapshot
from swoosh.workflows.identities import identities_epoch, sign_rotation_approval
from tests.unit.helpers import Driver

TEAM = {
    "op-1": ("operator", "boot", "policy"),
    "op-2": ("operator",),
    "op-3": ("operator",),
    "ingestion": ("ingestion",),
    "council-1": ("council", "tooling"),
    "council-2": ("council",),
    "council-3": ("council",),
    "environment": ("environment",),
    "execution": ("execution",),
}


def new_identity(*roles: str) -> tuple[Ed25519PrivateKey, dict[str, Any]]:
    key = Ed25519PrivateKey.generate()
    return key, {"id": signer_id(key.public_key()), "roles": list(roles or ("ingestion",))}


def rotation(d: Driver, *, approvers: list[str] | None = None, proposer: str = "op-1", **kw: Any) -> dict[str, Any]:
    inputs = d.factory.rotation_inputs(d.doc, approvers=approvers, proposer=proposer, **kw)
    return d.body("Identity_Rotate", inputs, signer=proposer)


# ---------------------------------------------------------------------- a key rotated out
def test_a_rotated_out_key_is_unauthorized_signer_from_the_next_index() -> None:
    d = Driver(signers=Signers.generate()).boot()  # its own keys: the test adds one
    d.submit("Ingestion_SourcesResolved")
    old = d.key("ingestion")
    new_key, new = new_identity("ingestion")
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[new], remove=[signer_id(old.public_key())])))
    err = d.reject(d.body("Ingestion_BytesOk", signer="ingestion"), "unauthorized_signer")
    assert "not an identity" in err.reason
    d.signers.keys["ingestion-2"] = new_key  # the new key works
    d.signers.roles["ingestion-2"] = ("ingestion",)
    d.submit("Ingestion_BytesOk", signer="ingestion-2")


def test_a_removed_signers_earlier_duplicate_is_refused_too() -> None:
    d = Driver().boot()
    first = d.body("Ingestion_SourcesResolved", signer="ingestion")
    d.send(first)
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, remove=[d.signers.id("ingestion")])))
    d.reject(first, "unauthorized_signer")  # not even answered as a duplicate


def test_rotation_applies_in_quarantine_and_pause_and_leaves_the_state_where_it_was() -> None:
    d = Driver().boot()
    d.submit("Policy_Quarantine", {"reason": "suspected key theft"})
    _, new = new_identity()
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[new])))
    assert d.doc["control"]["top"] == "QUARANTINED" and new in d.doc["boot"]["identities"]
    d.submit("Policy_Release", {"reason": "rotated"})
    d.submit("Control_Pause", {"reason": "maintenance"})
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, remove=[new["id"]])))
    assert d.doc["control"]["top"] == "PAUSED" and d.doc["control"]["paused_from"] == "PROJECT_LIFECYCLE"
    assert d.doc["epoch"]["boot"] == 4  # ConfigOk, Licensed, two rotations
    d.check_document()


def test_rotation_is_refused_once_terminated() -> None:
    d = Driver()
    d.run("Boot_ConfigOk")
    d.submit("Boot_LicenseFailed", {"reason": "no licence"})
    _, new = new_identity()
    d.reject(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[new])), "terminated")


# ---------------------------------------------------------------------- never without an operator
def test_rotation_never_leaves_the_project_without_an_operator() -> None:
    d = Driver().boot()
    me = d.signers.id("operator")
    err = d.reject(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, remove=[me])), "invalid_transition")
    assert "without an operator" in err.reason
    demoted = {"id": me, "roles": ["boot"]}
    d.reject(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[demoted])), "invalid_transition")
    _, successor = new_identity("operator")  # hand over: add the successor and remove oneself at once
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[successor], remove=[me])))
    assert [i["id"] for i in d.doc["boot"]["identities"] if "operator" in i["roles"]] == [successor["id"]]


# ---------------------------------------------------------------------- the majority of operators
@pytest.mark.parametrize(("operators", "need"), [(2, 2), (3, 2), (4, 3), (5, 3)])
def test_rotation_needs_a_strict_majority_of_the_operators(operators: int, need: int) -> None:
    team = {f"op-{i}": ("operator",) for i in range(1, operators + 1)} | {"ingestion": ("ingestion",)}
    team["op-1"] = ("operator", "boot")
    d = Driver(signers=Signers.generate(team))
    d.run("Boot_ConfigOk")
    _, new = new_identity()
    others = [f"op-{i}" for i in range(2, need + 1)]
    short = d.reject(rotation(d, add=[new], approvers=others[:-1]), "unauthorized_signer")
    assert f"needs {need} of the {operators} operators" in short.reason
    d.send(rotation(d, add=[new], approvers=others))
    assert new in d.doc["boot"]["identities"]


def test_a_single_operator_rotates_alone() -> None:
    d = Driver().boot()
    _, new = new_identity()
    d.send(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[new])))


def test_an_approval_cannot_be_replayed_for_another_rotation_or_later() -> None:
    d = Driver(signers=Signers.generate(TEAM))
    d.run("Boot_ConfigOk")
    _, first = new_identity()
    _, second = new_identity()
    epoch = identities_epoch(d.doc)
    for_first = sign_rotation_approval(d.key("op-2"), d.factory.project_id, epoch, [first], [])
    inputs = {"add": [second], "remove": [], "reason": "x", "approvals": [for_first]}
    err = d.reject(d.body("Identity_Rotate", inputs, signer="op-1"), "unauthorized_signer")
    assert "not over this rotation" in err.reason
    d.send(d.body("Identity_Rotate", {**inputs, "add": [first]}, signer="op-1"))
    # The same change again (after undoing it) with the old approval: the epoch has moved on.
    d.send(rotation(d, remove=[first["id"]], approvers=["op-2"]))
    err = d.reject(d.body("Identity_Rotate", {**inputs, "add": [first]}, signer="op-1"), "unauthorized_signer")
    assert f"the project is at epoch {epoch + 2}" in err.reason


def test_an_approval_by_a_non_operator_or_twice_by_one_does_not_count() -> None:
    d = Driver(signers=Signers.generate(TEAM))
    d.run("Boot_ConfigOk")
    _, new = new_identity()
    err = d.reject(rotation(d, add=[new], approvers=["ingestion"]), "unauthorized_signer")
    assert "not an operator identity" in err.reason
    err = d.reject(rotation(d, add=[new], approvers=["op-2", "op-2"]), "unauthorized_signer")
    assert "approves twice" in err.reason


def test_the_approvals_of_a_removed_operator_no_longer_count() -> None:
    d = Driver(signers=Signers.generate(TEAM))
    d.run("Boot_ConfigOk")
    d.send(rotation(d, remove=[d.signers.id("op-3")], approvers=["op-2"]))  # 2 of 3
    _, new = new_identity()
    err = d.reject(rotation(d, add=[new], approvers=["op-3"]), "unauthorized_signer")
    assert "not an operator identity" in err.reason
    d.send(rotation(d, add=[new], approvers=["op-2"]))  # now 2 of 2


# ---------------------------------------------------------------------- schema and the rule gate
SOMEONE = signer_id(Ed25519PrivateKey.generate().public_key())


@pytest.mark.parametrize(
    ("inputs", "why"),
    [
        ({"reason": "nothing"}, "both empty"),
        ({"add": [{"id": "hmmm:pubkey:nope", "roles": ["ingestion"]}], "reason": "x"}, "signer id"),
        ({"add": [{"id": SOMEONE, "roles": ["root"]}], "reason": "x"}, "unknown"),
        ({"add": [{"id": SOMEONE, "roles": ["system"]}], "reason": "x"}, "unknown"),
        ({"add": [{"id": SOMEONE, "roles": []}], "reason": "x"}, "at least one"),
        ({"add": [{"id": SOMEONE, "roles": ["ingestion"]}], "remove": [SOMEONE], "reason": "x"}, "both added"),
    ],
)
def test_malformed_rotations_are_schema(inputs: dict[str, Any], why: str) -> None:
    d = Driver().boot()
    err = d.reject(d.body("Identity_Rotate", inputs), "schema")
    assert why in err.reason


def test_a_rotation_that_changes_nothing_or_removes_a_stranger_is_invalid() -> None:
    d = Driver().boot()
    me = next(i for i in d.doc["boot"]["identities"] if i["id"] == d.signers.id("operator"))
    d.reject(d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, add=[dict(me)])), "invalid_transition")
    _, stranger = new_identity()
    err = d.reject(
        d.body("Identity_Rotate", d.factory.rotation_inputs(d.doc, remove=[stranger["id"]])), "invalid_transition"
    )
    assert "not an identity of the project" in err.reason


def test_projects_recorded_before_the_rule_do_not_know_the_transition_until_they_adopt_it() -> None:
    d = Driver()
    snap = d.engine.snapshot().model_dump(mode="json")
    del snap["config"]["identity_rotation"]  # as serialized before the field existed
    old = EngineSnapshot.model_validate(snap)
    assert old.config.identity_rotation is False
    assert old.config.adopt_rules().identity_rotation is True
    assert EngineConfig().identity_rotation is True
    legacy = Driver(config=old.config).boot()
    _, new = new_identity()
    legacy.reject(
        legacy.body("Identity_Rotate", legacy.factory.rotation_inputs(legacy.doc, add=[new])), "unknown_transition"
    )
