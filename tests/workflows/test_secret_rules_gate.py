"""The workflow scans every proposal with its project's built-in rules: new projects version 2, old ones 1."""

from __future__ import annotations

import json

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import ensure_project, handle, propose, read_decisions, read_state
from swoosh.workflows.lifecycle.workflow import ProjectLifecycle
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
    """The workflow decides with the project's rules (version 1 never knew this format), so a Signal sent past
    the client side is applied as it always was; what is *sent* is guarded by the newest rules: the client
    side never sends such a proposal, whatever the project's version (it would land in history)."""
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue, config=EngineConfig())
    refused = await _pause(tsenv, factory)
    assert isinstance(refused, Rejected) and refused.failing_guard == "policy" and refused.quarantined
    history = await tsenv.client.get_workflow_handle(workflow_id(factory.project_id)).fetch_history()
    assert KEY not in json.dumps(history.to_json_dict())
    head = (await read_state(tsenv.client, factory.project_id)).hash
    await propose(tsenv.client, factory.project_id, _release(factory, head))
    head = (await read_state(tsenv.client, factory.project_id)).hash
    body = factory.body("Control_Pause", head, {"reason": f"deploying with {KEY}"})
    await handle(tsenv.client, factory.project_id).signal(ProjectLifecycle.propose, ProposalRequest(body=body))
    for _ in range(50):
        page = await read_decisions(tsenv.client, factory.project_id)
        if page.records and page.records[-1]["transition"] == "Control_Pause":
            break
        await tsenv.sleep(0.1)
    assert page.records[-1]["transition"] == "Control_Pause"
    assert KEY in page.records[-1]["justification"]  # nor redacted it


def _release(factory: ProposalFactory, head: str) -> ProposalRequest:
    return ProposalRequest(body=factory.body("Policy_Release", head, {"reason": "the key was rotated"}))
