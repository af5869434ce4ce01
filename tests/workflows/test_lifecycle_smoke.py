from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_state
from swoosh.workflows.proposal import ProposalRequest


async def test_lifecycle_boot_is_accepted(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory
) -> None:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), task_queue)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Boot_ConfigOk", state.hash)
    answer = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(answer, Accepted), answer
    assert answer.index == 1
    again = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(again, Accepted) and again.duplicate
    stale = await propose(
        tsenv.client, factory.project_id, ProposalRequest(body=factory.body("Boot_Licensed", state.hash))
    )
    assert isinstance(stale, Rejected) and stale.error == "stale_state_hash"
