"""Dry runs change nothing, but each guarded one is an Update: they must not exhaust a run's Update budget.

Temporal accepts at most `history.maxTotalUpdates` Updates per run (2,000 by default) and suggests
continue-as-new before that. A project that only ever receives dry runs still has to snapshot, or it
would refuse every Update once the budget is spent. The dev server here allows 12 per run.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted
from swoosh.workflows.lifecycle.client import dry_run, ensure_project, propose, read_health, read_state
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.environment import FakeFacts, binary, lifecycle_worker, search_attribute_flags

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]


async def test_dry_runs_alone_snapshot_before_the_update_budget_runs_out(tmp_path: Path) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        dev_server_extra_args=[
            *search_attribute_flags(),
            "--dynamic-config-value",
            "history.maxTotalUpdates=12",
            "--log-level",
            "error",
        ],
        data_converter=pydantic_data_converter,
        ui=False,
    )
    try:
        signers = Signers.generate()
        factory = ProposalFactory(signers, f"dry-{uuid.uuid4().hex[:8]}")
        async with lifecycle_worker(env.client, facts=FakeFacts(), sink_dir=tmp_path) as tq:
            pid = factory.project_id
            await ensure_project(env.client, pid, signers.keyring(), tq)
            head = (await read_state(env.client, pid)).hash
            first = await propose(env.client, pid, ProposalRequest(body=factory.body("Boot_ConfigOk", head)))
            assert isinstance(first, Accepted)
            body = factory.body("Boot_Licensed", first.state_post_hash)  # guarded: every dry run is an Update
            answers = [await dry_run(env.client, pid, ProposalRequest(body=body)) for _ in range(30)]
            assert all(a.accepted and a.index == 2 for a in answers)
            health = await read_health(env.client, pid)
            assert health.runs >= 2 and health.index == 1  # snapshots happened; nothing was applied
            real = await propose(env.client, pid, ProposalRequest(body=body))
            assert isinstance(real, Accepted) and not real.duplicate
            assert real.state_post_hash == answers[0].state_post_hash
    finally:
        await env.shutdown()
