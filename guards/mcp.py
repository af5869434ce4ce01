"""MCP tooling guard: the registry is reachable (fresh fact) and every pinned tool version matches."""

from __future__ import annotations

from typing import Any

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed


def mcp_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    fact = facts.mcp
    if fact is None:
        return failed("mcp", "no MCP registry fact available")
    age = facts.now_ms - fact.fetched_at_ms
    if age > facts.max_fact_age_ms:
        return failed("mcp", f"MCP fact is {age} ms old (max {facts.max_fact_age_ms})")
    if not fact.reachable:
        return failed("mcp", "MCP registry unreachable" + (f": {fact.detail}" if fact.detail else ""))
    reasons = []
    for tool, version in sorted(dict(inputs.get("tool_pins", {})).items()):
        have = fact.tools.get(tool)
        if have is None:
            reasons.append(f"tool {tool} is not served by the registry")
        elif have != version:
            reasons.append(f"tool {tool} is {have}, pinned {version}")
    if reasons:
        return failed("mcp", *reasons)
    return passed("mcp", f"registry reachable (fact age {age} ms); {len(inputs.get('tool_pins', {}))} pins match")
