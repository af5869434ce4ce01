"""Model-based edge coverage, generated from the statechart YAML.

`swoosh.workflows.testing.coverage.plan_paths` finds, with the pure engine, a shortest accepted path to every
transition of the YAML. Each path is then driven through the real workflow on the time-skipping
server, and for every guard a transition declares, the same path ends with that guard made to fail.
A transition the planner cannot reach fails `test_edge_coverage_every_transition_has_a_path`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.guards.facts import PolicyFact, PolicyRuleSpec
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.lifecycle.client import ensure_project, read_decisions, read_state
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.coverage import TIMER, plan_paths
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts

SIGNERS = Signers.generate()
PLAN = plan_paths(ProposalFactory(SIGNERS, "edge-plan"))
CHART = default_statechart()
GUARDED = [(t.name, g) for t in CHART.transitions.values() for g in t.spec.guards]
OTHER_CLASS = {"plan": "work", "work": "review", "review": "reverb", "reverb": "plan"}


def test_edge_coverage_every_transition_has_a_path() -> None:
    missing = sorted(set(CHART.transitions) - set(PLAN))
    assert not missing, f"no accepted path reaches: {', '.join(missing)}"


async def _drive_prefix(
    env: WorkflowEnvironment, tq: str, facts: FakeFacts, project: str, steps: list[str]
) -> LifecycleDriver:
    factory = ProposalFactory(SIGNERS, project)
    await ensure_project(env.client, project, SIGNERS.keyring(), tq, config=EngineConfig(grace_ms=60_000))
    d = LifecycleDriver.for_client(env.client, factory, open_window=facts.open_window)
    for name in steps:
        facts.license_status = "throttled" if name == "License_Throttled" else "valid"
        await d.step(name)
    facts.license_status = "valid"
    return d


@pytest.mark.parametrize("transition", sorted(PLAN))
async def test_edge_coverage_transition_is_accepted_on_its_path(
    transition: str, tsenv: WorkflowEnvironment, task_queue: str, facts: FakeFacts
) -> None:
    path = PLAN[transition]
    project = f"edge-{transition.lower().replace('_', '-')}"
    d = await _drive_prefix(tsenv, task_queue, facts, project, path[:-1])
    if path[-1] == TIMER:
        await tsenv.sleep(timedelta(minutes=2))
        for _ in range(50):
            page = await read_decisions(tsenv.client, project)
            if page.records and page.records[-1]["transition"] == transition:
                break
            await asyncio.sleep(0.1)
        assert page.records[-1]["transition"] == transition
        assert page.records[-1]["signer"] == "swoosh:system"
        return
    facts.license_status = "throttled" if transition == "License_Throttled" else "valid"
    answer = await d.step(transition)
    assert isinstance(answer, Accepted) and answer.transition == transition
    state = await read_state(tsenv.client, project)
    assert state.hash == answer.state_post_hash


def _breaker(
    guard: str, transition: str, d: LifecycleDriver, facts: FakeFacts
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Make `guard` fail for the next proposal; returns a function that adjusts the inputs."""
    keep = dict
    if guard == "license":
        facts.license_status = "valid" if transition == "License_Throttled" else "denied"
    elif guard == "window":
        d.open_window = lambda cls, wid: facts.open_window(OTHER_CLASS[cls], wid)  # type: ignore[assignment,arg-type]
    elif guard == "mcp":
        facts.mcp_reachable = False
    elif guard == "policy":
        facts.policy = PolicyFact(rules=(PolicyRuleSpec(id="no-example-hosts", pattern=r"example\.invalid"),))
    elif guard == "quorum":
        return lambda inputs: {**inputs, "votes": inputs["votes"][:1]}
    elif guard == "approvals":
        return lambda inputs: {**inputs, "approvals": inputs["approvals"][:1]}
    elif guard == "readiness":
        return lambda inputs: {**inputs, "region_hashes": {**inputs["region_hashes"], "council": content_hash("stale")}}
    return keep


@pytest.mark.parametrize(("transition", "guard"), GUARDED, ids=[f"{t}-{g}" for t, g in GUARDED])
async def test_edge_coverage_guard_rejection_path(
    transition: str, guard: str, tsenv: WorkflowEnvironment, task_queue: str, facts: FakeFacts
) -> None:
    path = PLAN[transition]
    project = f"edge-{transition.lower().replace('_', '-')}-{guard}"
    d = await _drive_prefix(tsenv, task_queue, facts, project, path[:-1])
    before = await read_state(tsenv.client, project)
    if transition == "License_Restored":
        facts.license_status = "valid"
    adjust = _breaker(guard, transition, d, facts)
    inputs = adjust(await d.inputs_for(transition))
    answer = await d.try_step(transition, inputs, evidence=["ucxl://example.invalid/evidence"])
    assert isinstance(answer, Rejected), answer
    assert (answer.error, answer.failing_guard) == ("guard_failed", guard), answer
    after = await read_state(tsenv.client, project)
    if guard == "policy":
        assert after.phase["top"] == "QUARANTINED"
    else:
        assert after.hash == before.hash
