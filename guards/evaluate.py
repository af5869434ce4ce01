"""Run a transition's guards, in the statechart's order, over one state, inputs and facts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swoosh.guards.context import GuardContext
from swoosh.guards.council import approvals_guard, quorum_guard
from swoosh.guards.facts import Facts
from swoosh.guards.license import license_guard
from swoosh.guards.mcp import mcp_guard
from swoosh.guards.outcome import GuardOutcome
from swoosh.guards.policy import policy_guard
from swoosh.guards.readiness import readiness_guard
from swoosh.guards.window import window_guard

Guard = Callable[[dict[str, Any], dict[str, Any], Facts, GuardContext], GuardOutcome]

GUARDS: dict[str, Guard] = {
    "license": license_guard,
    "window": window_guard,
    "quorum": quorum_guard,
    "mcp": mcp_guard,
    "policy": policy_guard,
    "approvals": approvals_guard,
    "readiness": readiness_guard,
}


def evaluate_guards(
    names: tuple[str, ...] | list[str], state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext
) -> list[GuardOutcome]:
    """Every named guard's outcome (all are run, so the decision record shows every reason)."""
    return [GUARDS[name](state, inputs, facts, ctx) for name in names]
