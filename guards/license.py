"""KACHING licence guard: fail closed on a missing, stale, unverified or non-valid licence fact."""

from __future__ import annotations

from typing import Any

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed

THROTTLED_TRANSITIONS = ("License_Throttled",)


def license_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    fact = facts.license
    if fact is None:
        return failed("license", "no licence fact available (fail closed)")
    age = facts.now_ms - fact.fetched_at_ms
    if ctx.transition in THROTTLED_TRANSITIONS:
        if fact.status in ("throttled", "unreachable"):
            return passed("license", f"licence is {fact.status}: entering grace")
        return failed("license", f"licence is {fact.status}, not throttled")
    if age > facts.max_fact_age_ms:
        return failed("license", f"licence fact is {age} ms old (max {facts.max_fact_age_ms})")
    if not fact.verified:
        return failed("license", "licence verdict signature not verified")
    if fact.status != "valid":
        return failed("license", f"licence is {fact.status}" + (f": {fact.detail}" if fact.detail else ""))
    if fact.expires_at_ms is not None and fact.expires_at_ms <= facts.now_ms:
        return failed("license", "licence has expired")
    return passed("license", f"licence {fact.license_id or '?'} valid, fact age {age} ms")
