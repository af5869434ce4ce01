"""An old quorum certificate sent again after Council_Eject is rejected by the real workflow."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Rejected
from swoosh.workflows.lifecycle.client import read_head
from swoosh.workflows.testing.environment import FakeFacts
from tests.workflows.test_lifecycle import _driver


async def test_an_old_certificate_sent_again_after_an_eject_is_rejected(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _driver(tsenv, task_queue, signers, factory, facts)
    for t in ("Boot_ConfigOk", "Boot_Licensed", "Council_ProfilesLoaded"):
        await d.step(t)
    certificate = factory.quorum_inputs(d.window_id, state=await d.state())
    await d.step("Council_QuorumCert", certificate)
    ejected = factory.council_members()[0]
    await d.step("Council_Eject", {"member": ejected, "reason": "key compromised"})
    before = await read_head(tsenv.client, factory.project_id)
    again = await d.try_step("Council_QuorumCert", certificate)  # a fresh proposal carrying the old votes
    assert isinstance(again, Rejected) and again.error == "guard_failed" and again.failing_guard == "quorum"
    assert "cast in election epoch" in again.reason and ejected in again.reason
    after = await read_head(tsenv.client, factory.project_id)
    assert (after.hash, after.index) == (before.hash, before.index)
    elected = await d.step("Council_QuorumCert")  # votes of this election, by the eligible only
    state = await d.state()
    assert elected.index == before.index + 1 and ejected not in state["council"]["members"]
