"""Each guard passes on good input and fails, with the right reason, for each failure mode."""

from __future__ import annotations

from typing import Any

import pytest

from swoosh.guards import GUARDS, GuardContext, LicenseFact, McpFact, PolicyFact, PolicyRuleSpec, evaluate_guards
from swoosh.guards.council import (
    approvals_guard,
    eligible_council,
    members_hash,
    quorum_guard,
    sign_approval,
    sign_vote,
)
from swoosh.guards.license import license_guard
from swoosh.guards.mcp import mcp_guard
from swoosh.guards.outcome import GuardOutcome
from swoosh.guards.policy import BUILTIN_RULES, REDACTED, policy_guard, redact, scan
from swoosh.guards.readiness import readiness_guard, region_hashes
from swoosh.guards.window import window_guard
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.reducer import clone
from tests.unit.helpers import NOW, PROJECT, SIGNERS, STRANGER, TOOLS, WINDOW, Driver, good_facts, h

COUNCIL = ["council-1", "council-2", "council-3"]


def ctx(transition: str = "Boot_Licensed", **kw: Any) -> GuardContext:
    fields: dict[str, Any] = {"project_id": PROJECT, "transition": transition, "signer": SIGNERS.id("operator")}
    fields.update(kw)
    return GuardContext(**fields)


def reasons(outcome: GuardOutcome) -> str:
    return " | ".join(outcome.reasons)


@pytest.fixture(scope="module")
def ready_doc() -> dict[str, Any]:
    """A document with every lifecycle region READY and a council elected."""
    return clone(Driver().lifecycle().doc)


# ---------------------------------------------------------------------- licence


def license_facts(**fact: Any) -> Any:
    fields: dict[str, Any] = {"status": "valid", "license_id": "L-1", "fetched_at_ms": NOW, "verified": True}
    fields.update(fact)
    return good_facts(license=LicenseFact(**fields))


def test_license_guard_passes_valid_fresh_verified_licence() -> None:
    out = license_guard({}, {}, license_facts(), ctx())
    assert out.ok and out.guard == "license"
    assert "L-1 valid" in reasons(out)


def test_license_guard_fails_closed_without_fact() -> None:
    out = license_guard({}, {}, good_facts(license=None), ctx())
    assert not out.ok and "no licence fact" in reasons(out)


def test_license_guard_fails_on_stale_fact() -> None:
    out = license_guard({}, {}, license_facts(fetched_at_ms=NOW - 300_001), ctx())
    assert not out.ok and "300001 ms old" in reasons(out)


def test_license_guard_accepts_fact_at_max_age() -> None:
    assert license_guard({}, {}, license_facts(fetched_at_ms=NOW - 300_000), ctx()).ok


def test_license_guard_fails_on_unverified_verdict() -> None:
    out = license_guard({}, {}, license_facts(verified=False), ctx())
    assert not out.ok and "not verified" in reasons(out)


def test_license_guard_fails_on_denied_licence() -> None:
    out = license_guard({}, {}, license_facts(status="denied", detail="seat limit"), ctx())
    assert not out.ok and "licence is denied: seat limit" in reasons(out)


def test_license_guard_fails_on_expired_licence() -> None:
    out = license_guard({}, {}, license_facts(expires_at_ms=NOW), ctx())
    assert not out.ok and "expired" in reasons(out)


def test_license_guard_passes_licence_expiring_later() -> None:
    assert license_guard({}, {}, license_facts(expires_at_ms=NOW + 1), ctx()).ok


def test_license_guard_fails_throttled_licence_for_normal_transition() -> None:
    out = license_guard({}, {}, license_facts(status="throttled"), ctx("License_Restored"))
    assert not out.ok and "licence is throttled" in reasons(out)


@pytest.mark.parametrize("status", ["throttled", "unreachable"])
def test_license_guard_throttled_transition_passes_when_throttled(status: str) -> None:
    out = license_guard({}, {}, license_facts(status=status), ctx("License_Throttled"))
    assert out.ok and "entering grace" in reasons(out)


def test_license_guard_throttled_transition_fails_when_licence_valid() -> None:
    out = license_guard({}, {}, license_facts(status="valid"), ctx("License_Throttled"))
    assert not out.ok and "not throttled" in reasons(out)


def test_license_guard_throttled_transition_still_needs_a_fact() -> None:
    assert not license_guard({}, {}, good_facts(license=None), ctx("License_Throttled")).ok


# ---------------------------------------------------------------------- MCP


def mcp_facts(**fact: Any) -> Any:
    fields: dict[str, Any] = {"reachable": True, "tools": dict(TOOLS), "fetched_at_ms": NOW}
    fields.update(fact)
    return good_facts(mcp=McpFact(**fields))


PINS = {"tool_pins": dict(TOOLS)}


def test_mcp_guard_passes_reachable_registry_with_matching_pins() -> None:
    out = mcp_guard({}, PINS, mcp_facts(), ctx("Council_McpGreen"))
    assert out.ok and "2 pins match" in reasons(out)


def test_mcp_guard_fails_without_fact() -> None:
    out = mcp_guard({}, PINS, good_facts(mcp=None), ctx("Council_McpGreen"))
    assert not out.ok and "no MCP registry fact" in reasons(out)


def test_mcp_guard_fails_on_stale_fact() -> None:
    out = mcp_guard({}, PINS, mcp_facts(fetched_at_ms=NOW - 400_000), ctx("Council_McpGreen"))
    assert not out.ok and "400000 ms old" in reasons(out)


def test_mcp_guard_fails_when_unreachable() -> None:
    out = mcp_guard({}, PINS, mcp_facts(reachable=False, detail="connection refused"), ctx("Council_McpGreen"))
    assert not out.ok and "unreachable: connection refused" in reasons(out)


def test_mcp_guard_fails_on_version_mismatch() -> None:
    out = mcp_guard({}, {"tool_pins": {"git": "2.44.0"}}, mcp_facts(), ctx("Council_McpGreen"))
    assert not out.ok and "tool git is 2.45.0, pinned 2.44.0" in reasons(out)


def test_mcp_guard_fails_on_missing_tool() -> None:
    out = mcp_guard({}, {"tool_pins": {"terraform": "1.9"}}, mcp_facts(), ctx("Council_McpGreen"))
    assert not out.ok and "tool terraform is not served" in reasons(out)


# ---------------------------------------------------------------------- window


def window_ctx(**kw: Any) -> GuardContext:
    fields: dict[str, Any] = {"window_id": WINDOW, "window_class": "work"}
    fields.update(kw)
    return ctx("Execution_PlanLocked", **fields)


def test_window_guard_passes_when_class_open_in_named_window() -> None:
    out = window_guard({}, {}, good_facts(window_class="work"), window_ctx())
    assert out.ok and "work window open" in reasons(out)


def test_window_guard_fails_without_beat_frame() -> None:
    out = window_guard({}, {}, good_facts(beat=None), window_ctx())
    assert not out.ok and "no BACKBEAT beat frame" in reasons(out)


def test_window_guard_fails_on_other_window_id() -> None:
    out = window_guard({}, {}, good_facts(window_class="work", window_id="backbeat:W-other"), window_ctx())
    assert not out.ok and "is not the current window backbeat:W-other" in reasons(out)


def test_window_guard_fails_on_wrong_class() -> None:
    out = window_guard({}, {}, good_facts(window_class="review"), window_ctx())
    assert not out.ok and "work window is closed" in reasons(out)


def test_window_guard_fails_past_deadline() -> None:
    beat = good_facts(window_class="work").beat
    assert beat is not None
    out = window_guard({}, {}, good_facts(now_ms=beat.deadline_at_ms, beat=beat), window_ctx())
    assert not out.ok and "closed 0 ms ago" in reasons(out)


def test_window_guard_passes_just_before_deadline() -> None:
    beat = good_facts(window_class="work").beat
    assert beat is not None
    out = window_guard({}, {}, good_facts(now_ms=beat.deadline_at_ms - 1, beat=beat), window_ctx())
    assert out.ok and "1 ms left" in reasons(out)


def test_window_guard_fails_without_window_id() -> None:
    out = window_guard({}, {}, good_facts(window_class="work"), window_ctx(window_id=None))
    assert not out.ok and "names no window_id" in reasons(out)


# ---------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE", "pem-private-key"),
        ("-----BEGIN PRIVATE KEY-----", "pem-private-key"),
        ("Authorization: Bearer abcdefghijklmnop1234", "bearer-token"),
        ("key sk_live_" + "a1B2" * 6, "api-key"),
        ("AKIA" + "ABCDEFGHIJKLMNOP", "api-key"),
        ("ghp_" + "x" * 36, "api-key"),
        ("password = 'hunter2hunter2'", "api-key"),
    ],
)
def test_policy_guard_fails_on_builtin_secret(text: str, rule: str) -> None:
    out = policy_guard({}, {"sources": [text]}, good_facts(), ctx("Ingestion_SourcesResolved"))
    assert not out.ok
    assert f"breach: {rule}" in reasons(out)
    assert "at inputs.sources[0]" in reasons(out)


def test_policy_guard_passes_clean_inputs() -> None:
    out = policy_guard({}, {"sources": ["git://example/corpus"]}, good_facts(), ctx("Ingestion_SourcesResolved"))
    assert out.ok and "no breach" in reasons(out)


def test_policy_guard_breach_reason_does_not_repeat_the_secret() -> None:
    secret = "ghp_" + "s" * 36
    out = policy_guard({}, {"sources": [secret]}, good_facts(), ctx("Ingestion_SourcesResolved"))
    assert secret not in reasons(out)


def test_policy_guard_scans_evidence() -> None:
    out = policy_guard({}, {}, good_facts(), ctx("Ingestion_SchemaOk", evidence=("Bearer abcdefghijklmnopqrstu",)))
    assert not out.ok and "bearer-token (high) at evidence[0]" in reasons(out)


def test_policy_guard_scans_object_keys() -> None:
    out = policy_guard({}, {"pins": {"AKIAABCDEFGHIJKLMNOP": "x"}}, good_facts(), ctx("Ingestion_SchemaOk"))
    assert not out.ok and "at inputs.pins.<key>" in reasons(out)


def test_policy_guard_applies_custom_rule() -> None:
    rule = PolicyRuleSpec(id="no-internal", pattern=r"internal\.corp", severity="medium")
    facts = good_facts(policy=PolicyFact(rules=(rule,)))
    out = policy_guard({}, {"sources": ["https://internal.corp/x"]}, facts, ctx("Ingestion_SourcesResolved"))
    assert not out.ok and "breach: no-internal (medium) at inputs.sources[0]" in reasons(out)


def test_policy_guard_without_builtins_ignores_builtin_secrets() -> None:
    facts = good_facts(policy=PolicyFact(builtin=False))
    assert policy_guard({}, {"sources": ["-----BEGIN PRIVATE KEY-----"]}, facts, ctx("Ingestion_SchemaOk")).ok


def test_policy_guard_fails_on_external_breach() -> None:
    facts = good_facts(policy=PolicyFact(external_breaches=("shhh: classified corpus",)))
    out = policy_guard({}, {}, facts, ctx("Ingestion_SchemaOk"))
    assert not out.ok and "shhh: classified corpus" in reasons(out)


def test_policy_scan_orders_breaches_deterministically() -> None:
    inputs = {"b": "Bearer abcdefghijklmnopqrstu", "a": "-----BEGIN PRIVATE KEY-----"}
    assert scan(BUILTIN_RULES, inputs, []) == [
        "pem-private-key (critical) at inputs.a",
        "bearer-token (high) at inputs.b",
    ]


def test_redact_replaces_secrets_in_nested_values() -> None:
    value = {"note": "token: abcdefghijklmnopq done", "list": ["Bearer abcdefghijklmnopqrstu", 3]}
    out = redact(value)
    assert out["note"] == f"{REDACTED} done"
    assert out["list"] == [REDACTED, 3]
    assert value["list"][0].startswith("Bearer")  # the input is not modified


def test_redact_leaves_clean_text_alone() -> None:
    assert redact("nothing to see") == "nothing to see"


def test_redact_with_custom_rules() -> None:
    rule = PolicyRuleSpec(id="codename", pattern=r"Project X")
    assert redact("about Project X", (rule,)) == f"about {REDACTED}"


# ---------------------------------------------------------------------- readiness


def test_readiness_guard_passes_all_ready_matching_hashes(ready_doc: dict[str, Any]) -> None:
    out = readiness_guard(
        ready_doc, {"region_hashes": region_hashes(ready_doc)}, good_facts(), ctx("Execution_AllReady")
    )
    assert out.ok


def test_readiness_guard_fails_when_a_region_is_not_ready(ready_doc: dict[str, Any]) -> None:
    doc = clone(ready_doc)
    doc["environment"]["phase"] = "DEGRADED"
    out = readiness_guard(doc, {"region_hashes": region_hashes(doc)}, good_facts(), ctx("Execution_AllReady"))
    assert not out.ok and "environment is DEGRADED, not READY" in reasons(out)


def test_readiness_guard_fails_on_hash_mismatch(ready_doc: dict[str, Any]) -> None:
    pinned = {**region_hashes(ready_doc), "council": h("stale council")}
    out = readiness_guard(ready_doc, {"region_hashes": pinned}, good_facts(), ctx("Execution_AllReady"))
    assert not out.ok and "council hash in inputs differs" in reasons(out)


def test_region_hashes_are_hashes_of_sections(ready_doc: dict[str, Any]) -> None:
    from swoosh.workflows.canonical import content_hash

    assert region_hashes(ready_doc) == {r: content_hash(ready_doc[r]) for r in ("ingestion", "council", "environment")}


# ---------------------------------------------------------------------- quorum


def quorum_inputs(
    members: list[str] | None = None, voters: list[str] | None = None, window: str | None = WINDOW
) -> dict[str, Any]:
    members = members if members is not None else sorted(SIGNERS.id(n) for n in COUNCIL)
    hashed = members_hash(members)
    votes = [sign_vote(SIGNERS.keys[n], PROJECT, hashed, window) for n in (voters if voters is not None else COUNCIL)]
    return {"members": members, "members_hash": hashed, "votes": votes}


def qctx() -> GuardContext:
    return ctx("Council_QuorumCert", window_id=WINDOW)


@pytest.fixture(scope="module")
def genesis_doc() -> dict[str, Any]:
    return clone(Driver().doc)


def test_eligible_council_is_council_role_holders(genesis_doc: dict[str, Any]) -> None:
    assert eligible_council(genesis_doc) == sorted(SIGNERS.id(n) for n in COUNCIL)


def test_quorum_guard_passes_majority_of_valid_votes(genesis_doc: dict[str, Any]) -> None:
    out = quorum_guard(genesis_doc, quorum_inputs(voters=["council-1", "council-3"]), good_facts(), qctx())
    assert out.ok and "2 valid votes of 3 eligible; 2 needed" in reasons(out)


def test_quorum_guard_fails_on_member_hash_mismatch(genesis_doc: dict[str, Any]) -> None:
    inputs = {**quorum_inputs(), "members_hash": h("another set")}
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "members_hash differs" in reasons(out)


def test_quorum_guard_fails_on_vote_for_other_member_set(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs()
    other = members_hash([SIGNERS.id("council-1")])
    inputs["votes"][0] = sign_vote(SIGNERS.keys["council-1"], PROJECT, other, WINDOW)
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "vote 0: signed for a different member set" in reasons(out)


def test_quorum_guard_fails_on_unknown_voter(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs()
    inputs["votes"].append(sign_vote(STRANGER, PROJECT, inputs["members_hash"], WINDOW))
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and f"voter {signer_id(STRANGER.public_key())} is not an eligible council identity" in reasons(
        out
    )


def test_quorum_guard_fails_on_non_council_voter(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs()
    inputs["votes"].append(sign_vote(SIGNERS.keys["ingestion"], PROJECT, inputs["members_hash"], WINDOW))
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "is not an eligible council identity" in reasons(out)


def test_quorum_guard_fails_on_duplicate_voter(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs(voters=["council-1", "council-1", "council-2"])
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and f"voter {SIGNERS.id('council-1')} appears twice" in reasons(out)


def test_quorum_guard_fails_on_bad_signature(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs()
    inputs["votes"][1] = {**inputs["votes"][1], "signature": inputs["votes"][0]["signature"]}
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "vote 1: signature by" in reasons(out) and "is invalid" in reasons(out)


def test_quorum_guard_fails_on_vote_for_other_project(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs()
    inputs["votes"][0] = sign_vote(SIGNERS.keys["council-1"], "other-project", inputs["members_hash"], WINDOW)
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "vote 0: signature by" in reasons(out)


def test_quorum_guard_fails_on_stale_window(genesis_doc: dict[str, Any]) -> None:
    inputs = quorum_inputs(window="backbeat:W-old")
    out = quorum_guard(genesis_doc, inputs, good_facts(), qctx())
    assert not out.ok and "stale window backbeat:W-old" in reasons(out)


def test_quorum_guard_fails_without_majority(genesis_doc: dict[str, Any]) -> None:
    out = quorum_guard(genesis_doc, quorum_inputs(voters=["council-2"]), good_facts(), qctx())
    assert not out.ok and "1 valid votes of 3 eligible; 2 needed" in reasons(out)


def test_quorum_guard_fails_on_ineligible_member(genesis_doc: dict[str, Any]) -> None:
    members = sorted([SIGNERS.id("council-1"), SIGNERS.id("environment")])
    out = quorum_guard(genesis_doc, quorum_inputs(members=members), good_facts(), qctx())
    assert not out.ok and f"not eligible council identities: {SIGNERS.id('environment')}" in reasons(out)


def test_quorum_guard_fails_on_member_listed_twice(genesis_doc: dict[str, Any]) -> None:
    member = SIGNERS.id("council-1")
    out = quorum_guard(genesis_doc, quorum_inputs(members=[member, member]), good_facts(), qctx())
    assert not out.ok and "listed twice" in reasons(out)


def test_members_hash_ignores_order_and_duplicates() -> None:
    a, b = SIGNERS.id("council-1"), SIGNERS.id("council-2")
    assert members_hash([b, a, a]) == members_hash([a, b])


# ---------------------------------------------------------------------- approvals


def approvals_for(doc: dict[str, Any], names: list[str], window: str | None = WINDOW) -> dict[str, Any]:
    council_hash = doc["council"]["members_hash"]
    return {"approvals": [sign_approval(SIGNERS.keys[n], PROJECT, council_hash, window) for n in names]}


def actx() -> GuardContext:
    return ctx("Execution_ApprovalsThreshold", window_id=WINDOW, window_class="reverb")


def test_approvals_guard_passes_majority_of_members(ready_doc: dict[str, Any]) -> None:
    out = approvals_guard(ready_doc, approvals_for(ready_doc, ["council-1", "council-2"]), good_facts(), actx())
    assert out.ok


def test_approvals_guard_fails_below_threshold(ready_doc: dict[str, Any]) -> None:
    out = approvals_guard(ready_doc, approvals_for(ready_doc, ["council-3"]), good_facts(), actx())
    assert not out.ok and "1 valid approvals of 3 eligible; 2 needed" in reasons(out)


def test_approvals_guard_fails_on_non_member(ready_doc: dict[str, Any]) -> None:
    out = approvals_guard(ready_doc, approvals_for(ready_doc, ["council-1", "operator"]), good_facts(), actx())
    assert not out.ok and f"approver {SIGNERS.id('operator')} is not an eligible council identity" in reasons(out)


def test_approvals_guard_fails_on_vote_signature_used_as_approval(ready_doc: dict[str, Any]) -> None:
    council_hash = ready_doc["council"]["members_hash"]
    vote = sign_vote(SIGNERS.keys["council-1"], PROJECT, council_hash, WINDOW)
    approval = {
        "approver": vote["voter"],
        "members_hash": council_hash,
        "window_id": WINDOW,
        "signature": vote["signature"],
    }
    out = approvals_guard(ready_doc, {"approvals": [approval]}, good_facts(), actx())
    assert not out.ok and "is invalid" in reasons(out)


def test_approvals_guard_fails_without_elected_council(genesis_doc: dict[str, Any]) -> None:
    out = approvals_guard(genesis_doc, {"approvals": []}, good_facts(), actx())
    assert not out.ok and "no council is elected" in reasons(out)


# ---------------------------------------------------------------------- evaluation


def test_guards_registry_covers_every_statechart_guard() -> None:
    from swoosh.workflows.statechart import default_statechart

    used = {g for t in default_statechart().transitions.values() for g in t.spec.guards}
    assert used <= set(GUARDS)


def test_evaluate_guards_runs_every_guard_in_order() -> None:
    facts = good_facts(license=None, beat=None)
    outs = evaluate_guards(("window", "license"), {}, {}, facts, window_ctx())
    assert [(o.guard, o.ok) for o in outs] == [("window", False), ("license", False)]


def test_guard_outcome_as_json() -> None:
    out = evaluate_guards(("license",), {}, {}, good_facts(), ctx())[0]
    assert out.as_json() == {"guard": "license", "ok": True, "reasons": list(out.reasons)}


def test_guards_registry_is_the_statechart_guard_names() -> None:
    """A guard named in the YAML must exist, and every registered guard must be nameable there."""
    from typing import get_args

    from swoosh.workflows.statechart import GuardName

    assert set(GUARDS) == set(get_args(GuardName))
