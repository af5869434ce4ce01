"""EXECUTION readiness: all three lifecycle regions READY, pinned by the region hashes in inputs."""

from __future__ import annotations

from typing import Any

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed
from swoosh.workflows.canonical import content_hash

REGIONS = ("ingestion", "council", "environment")


def region_hashes(state: dict[str, Any]) -> dict[str, str]:
    """The current hash of each lifecycle region's section."""
    return {r: content_hash(state[r]) for r in REGIONS}


def readiness_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    reasons = []
    for region in REGIONS:
        phase = state[region]["phase"]
        if phase != "READY":
            reasons.append(f"{region} is {phase}, not READY")
    current = region_hashes(state)
    pinned = inputs.get("region_hashes", {})
    for region in REGIONS:
        if pinned.get(region) != current[region]:
            reasons.append(f"{region} hash in inputs differs from the current {region} section")
    if reasons:
        return failed("readiness", *reasons)
    return passed("readiness", "ingestion, council and environment READY with matching hashes")
