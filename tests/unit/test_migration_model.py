"""The pure migration model: configs, who decides, audited changes; the ledger's ownership and bounds."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from swoosh.workflows.migration import (
    AUDIT_KEEP,
    MigrationChange,
    MigrationConfig,
    MigrationError,
    MigrationState,
    routable_prefixes,
)
from swoosh.workflows.shadow import (
    CLAIMS_KEEP,
    DIVERGENCES_KEEP,
    JOURNAL_MAX,
    CatchUp,
    Divergence,
    JournalEntry,
    LedgerState,
    Settlement,
)

URL = "http://whoosh.internal:8080"


def test_routable_prefixes_are_the_callers_regions() -> None:
    prefixes = routable_prefixes()
    assert {"Boot", "Ingestion", "Council", "Environment", "Execution", "Control", "Policy", "License"} <= set(prefixes)


@pytest.mark.parametrize(
    ("config", "transition", "decider"),
    [
        (MigrationConfig(), "Council_QuorumCert", "swoosh"),
        (MigrationConfig(mode="shadow", legacy_url=URL), "Council_QuorumCert", "legacy"),
        (MigrationConfig(mode="bypass", legacy_url=URL), "Council_QuorumCert", "legacy"),
        (MigrationConfig(mode="route", legacy_url=URL, routed=("Council",)), "Council_QuorumCert", "swoosh"),
        (MigrationConfig(mode="route", legacy_url=URL, routed=("Council",)), "Ingestion_BytesOk", "legacy"),
        (MigrationConfig(mode="route", legacy_url=URL, routed=("*",)), "Execution_NextWindow", "swoosh"),
    ],
)
def test_who_decides_a_transition(config: MigrationConfig, transition: str, decider: str) -> None:
    assert config.decider(transition) == decider


def test_routed_prefixes_are_read_from_csv_any_case_and_deduplicated() -> None:
    config = MigrationConfig(mode="route", legacy_url=URL + "/", routed="council, Ingestion,COUNCIL")  # type: ignore[arg-type]
    assert config.routed == ("Council", "Ingestion") and config.legacy_url == URL
    assert MigrationConfig(mode="route", legacy_url=URL, routed=("Council", "*")).routed == ("*",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"mode": "shadow"}, "needs legacy_url"),
        ({"mode": "route", "legacy_url": URL}, "needs routed"),
        ({"mode": "route", "legacy_url": URL, "routed": ("Councils",)}, "unknown prefix"),
        ({"mode": "off", "legacy_url": "file:///etc/passwd"}, "http"),
    ],
)
def test_incoherent_configs_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MigrationConfig.model_validate(fields)


def test_changes_are_versioned_and_audited_with_who_when_from_and_to() -> None:
    state = MigrationState()
    entry = state.apply(
        MigrationChange(config=MigrationConfig(mode="shadow", legacy_url=URL), by="ops-1", reason="go"), 5
    )
    assert (entry.version, entry.at_ms, entry.by, entry.before.mode, entry.after.mode) == (
        1,
        5,
        "ops-1",
        "off",
        "shadow",
    )
    view = state.view()
    assert (view.mode, view.version, view.changed_by, view.changed_at_ms, view.reason) == (
        "shadow",
        1,
        "ops-1",
        5,
        "go",
    )


def test_a_change_against_a_moved_version_is_refused_and_changes_nothing() -> None:
    state = MigrationState()
    state.apply(MigrationChange(config=MigrationConfig(mode="shadow", legacy_url=URL)), 1)
    with pytest.raises(MigrationError, match="version 1"):
        state.apply(MigrationChange(config=MigrationConfig(), expected_version=0), 2)
    assert (state.version, state.config.mode, len(state.audit)) == (1, "shadow", 1)


def test_the_audit_keeps_the_newest_changes() -> None:
    state = MigrationState()
    for n in range(AUDIT_KEEP + 10):
        state.apply(MigrationChange(config=MigrationConfig(), reason=str(n)), n)
    assert len(state.audit) == AUDIT_KEEP and state.audit[0].reason == "10" and state.version == AUDIT_KEEP + 10
    assert state.view(audit_limit=3).audit[0].reason == str(AUDIT_KEEP + 9)


def test_change_author_must_be_a_token_label() -> None:
    with pytest.raises(ValidationError, match="token label"):
        MigrationChange(config=MigrationConfig(), by="bob smith; drop")


# ---------------------------------------------------------------------- the ledger
def test_the_first_claim_of_a_key_wins_and_is_returned_again() -> None:
    ledger = LedgerState(project_id="p")
    first, new = ledger.claim("k1", "Boot_ConfigOk", 1)
    again, new_again = ledger.claim("k1", "Control_Pause", 2)
    assert new and not new_again and again == first and again.transition == "Boot_ConfigOk"
    assert ledger.lookup("k1").claim == first and ledger.lookup("k2").claim is None


def test_claims_are_bounded_oldest_first() -> None:
    ledger = LedgerState(project_id="p")
    for n in range(CLAIMS_KEEP + 5):
        ledger.claim(f"k{n}", "Boot_ConfigOk", n)
    assert len(ledger.claims) == CLAIMS_KEEP and ledger.lookup("k0").claim is None and ledger.lookup("k5").claim


def entry(n: int, size: int = 10) -> JournalEntry:
    return JournalEntry(
        idem_key=f"k{n}", transition="Control_Pause", body={"transition": "Control_Pause", "x": "y" * size}
    )


def test_a_settlement_records_the_answers_counts_and_journals() -> None:
    ledger = LedgerState(project_id="p")
    ledger.claim("k1", "Control_Pause", 1)
    ledger.settle(
        Settlement(
            idem_key="k1", transition="Control_Pause", legacy_status=202, legacy_accepted=True, journal=entry(1)
        ),
        2,
    )
    assert ledger.lookup("k1").claim.legacy_accepted is True  # type: ignore[union-attr]
    assert ledger.lookup("x").pending == 1 and ledger.journal[0].seq == 1 and ledger.journal[0].at_ms == 2
    ledger.caught_up(CatchUp(through_seq=1, outcomes={"k1": "applied"}), 3)
    assert ledger.lookup("k1").pending == 0 and ledger.lookup("k1").claim.swoosh == "applied"  # type: ignore[union-attr]


def test_the_journal_is_bounded_in_entries_and_bytes_and_says_what_it_dropped() -> None:
    ledger = LedgerState(project_id="p")
    for n in range(JOURNAL_MAX + 3):
        ledger.settle(
            Settlement(
                idem_key=f"k{n}", transition="Control_Pause", legacy_status=202, legacy_accepted=True, journal=entry(n)
            ),
            n,
        )
    assert len(ledger.journal) == JOURNAL_MAX and ledger.dropped == 3
    assert ledger.report().by_kind == {"unapplied": 3}
    big = LedgerState(project_id="q")
    for n in range(3):
        big.settle(
            Settlement(
                idem_key=f"k{n}",
                transition="Control_Pause",
                legacy_status=202,
                legacy_accepted=True,
                journal=entry(n, 100_000),
            ),
            n,
        )
    assert len(big.journal) == 2 and big.dropped == 1


def test_divergences_are_bounded_newest_first_with_counters_by_transition() -> None:
    ledger = LedgerState(project_id="p")
    for n in range(DIVERGENCES_KEEP + 20):
        d = Divergence(
            idem_key=f"k{n}", transition="Council_QuorumCert", kind="decision", mode="shadow", legacy="a", swoosh="b"
        )
        ledger.settle(
            Settlement(
                idem_key=f"k{n}",
                transition="Council_QuorumCert",
                legacy_status=400,
                legacy_accepted=False,
                compared=True,
                divergences=[d],
            ),
            n,
        )
    report = ledger.report(limit=5)
    assert len(ledger.divergences) == DIVERGENCES_KEEP and report.divergences[0].idem_key == f"k{DIVERGENCES_KEEP + 19}"
    assert report.diverged == {"Council_QuorumCert": DIVERGENCES_KEEP + 20} == report.compared
    ledger.settle(
        Settlement(
            idem_key="z", transition="Not_ATransition" * 100, legacy_status=202, legacy_accepted=True, compared=True
        ),
        0,
    )
    assert "unknown" in ledger.report().compared  # counters are keyed by the statechart's names only
