"""Operators' SHHH rules run on RE2: a pattern that backtracks for ever on Python's `re` is linear here."""

from __future__ import annotations

import time

import pytest

from swoosh.activities.config import ShhhSettings
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts, PolicyFact, PolicyRuleSpec
from swoosh.guards.policy import policy_guard, redact

CTX = GuardContext(project_id="demo", transition="Ingestion_SourcesResolved", signer="s")
# Nested quantifiers: Python's `re` tries every way to split the a's before failing at the "b",
# 2^n steps (40 a's: days); RE2 answers in one pass.
CATASTROPHIC = PolicyRuleSpec(id="runaway", pattern=r"^(a+)+$", severity="low")


def test_a_catastrophic_operator_rule_scans_a_megabyte_in_linear_time() -> None:
    facts = Facts(now_ms=0, policy=PolicyFact(rules=(CATASTROPHIC,)))
    inputs = {"sources": ["a" * 40 + "b", "a" * 1_000_000 + "b"]}
    started = time.monotonic()
    outcome = policy_guard({}, inputs, facts, CTX)
    assert outcome.ok, outcome.reasons
    assert time.monotonic() - started < 2.0


def test_an_operator_rule_still_finds_and_redacts_its_matches() -> None:
    rule = PolicyRuleSpec(id="internal-host", pattern=r"\b[a-z0-9-]+\.corp\.internal\b", severity="medium")
    facts = Facts(now_ms=0, policy=PolicyFact(rules=(rule,)))
    outcome = policy_guard({}, {"sources": ["git://build-7.corp.internal/repo"]}, facts, CTX)
    assert not outcome.ok and "internal-host (medium) at inputs.sources[0]" in outcome.reasons[0]
    assert redact("see build-7.corp.internal now", (rule,)) == "see [REDACTED] now"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"foo(?=bar)", r"(?<!x)y"])
def test_a_rule_re2_cannot_run_is_refused_when_the_settings_load(pattern: str) -> None:
    with pytest.raises(ValueError, match="RE2 has no backreferences or lookaround"):
        ShhhSettings(rules=(PolicyRuleSpec(id="custom", pattern=pattern),))


def test_every_version_of_the_built_in_rules_stays_on_pythons_re() -> None:
    """Workflow code scans with them (deterministic, in the sandbox): RE2 is for operators' rules only."""
    import re

    from swoosh.guards.policy import BUILTIN_RULE_VERSIONS, _compiled

    for rules in BUILTIN_RULE_VERSIONS.values():
        for rule in rules:
            assert isinstance(_compiled(rule), re.Pattern), rule.id
