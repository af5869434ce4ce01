"""The workflow scans every proposal with its project's built-in rules: new projects version 2, old ones 1."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_state
from swoosh.workflows.proposal import ProposalRequest

KEY = "sk-proj-" + "Ab3_dE5-" * 6  # an OpenAI project key's shape (made up)


async def _pause(env: WorkflowEnvironment, factory: ProposalFactory) -> Accepted | Rejected:
    head = (await read_state(env.client, factory.project_id)).hash
    body = factory.body("Control_Pause", head, {"reason": f"deploying with {KEY}"})
    return await propose(env.client, factory.project_id, ProposalRequest(body=body))


async def test_new_project_refuses_a_modern_key_and_quarantines(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory
) -> None:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue)
    answer = await _pause(tsenv, factory)
    assert isinstance(answer, Rejected) and answer.failing_guard == "policy"
    assert "api-key (high) at inputs.reason" in answer.reason
    assert (await read_state(tsenv.client, factory.project_id)).phase["top"] == "QUARANTINED"


async def test_project_on_version_1_rules_decides_as_it_always_did(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory
) -> None:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue, config=EngineConfig())
    answer = await _pause(tsenv, factory)
    assert isinstance(answer, Accepted), answer  # version 1 never knew this format
    assert KEY in answer.decision_record["justification"]  # nor redacted it  # type: ignore[index]
