"""A guard activity that fails after its retries: the Update is answered "retry later", the Signal is logged,
and the project's workflow keeps running (it once closed as Failed)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import (
    propose,
    read_head,
    read_rejections,
    signal_proposal,
    unavailable,
)
from swoosh.workflows.messages import UNAVAILABLE_LOG_ERROR
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.environment import FakeFacts
from tests.workflows.test_lifecycle import _driver, _wait_for


async def _running(env: WorkflowEnvironment, project: str) -> bool:
    desc = await env.client.get_workflow_handle(workflow_id(project)).describe()
    return desc.status == WorkflowExecutionStatus.RUNNING


async def test_update_whose_guards_cannot_be_evaluated_is_answered_retry_later(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.step("Boot_ConfigOk")
    before = await read_head(tsenv.client, factory.project_id)
    facts.down = True
    body = factory.body("Boot_Licensed", before.hash, {"license_id": "LIC-1"})
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    reason = unavailable(err.value)
    assert reason is not None and "license" in reason and "could not be evaluated" in reason
    assert facts.calls >= 3  # the guard activity's attempts
    after = await read_head(tsenv.client, factory.project_id)
    assert (after.hash, after.index) == (before.hash, before.index)
    assert await _running(tsenv, factory.project_id)
    facts.down = False  # the provider is back: the same proposal, resent, is applied
    answer = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(answer, Accepted) and not answer.duplicate and answer.index == before.index + 1


async def test_signal_whose_guards_cannot_be_evaluated_is_logged_and_the_workflow_runs_on(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    await d.step("Boot_ConfigOk")
    before = await read_head(tsenv.client, factory.project_id)
    facts.down = True
    body = factory.body("Boot_Licensed", before.hash, {"license_id": "LIC-1"})
    await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=body))

    async def logged() -> bool:
        return len(await read_rejections(tsenv.client, factory.project_id)) == 1

    await _wait_for(logged)
    entry = (await read_rejections(tsenv.client, factory.project_id))[0]
    assert entry.error == UNAVAILABLE_LOG_ERROR and entry.idem_key == body["idem_key"]
    assert "could not be evaluated" in entry.reason and entry.at_index == before.index
    assert await _running(tsenv, factory.project_id)
    facts.down = False
    await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=body))

    async def applied() -> bool:
        return (await read_head(tsenv.client, factory.project_id)).index == before.index + 1

    await _wait_for(applied)
