"""Past states on the time-skipping server, which has no visibility: the chain of runs is walked back."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.lifecycle.client import ensure_project, read_decisions, read_health, read_state
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.replay.timetravel import PastStates, PastUnavailable
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker


async def test_past_states_walk_the_chain_of_runs(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    pid = factory.project_id
    async with lifecycle_worker(tsenv.client, facts=facts, sink=JsonlSink(tmp_path)) as tq:
        await ensure_project(tsenv.client, pid, signers.keyring(), tq, settings=LifecycleSettings(snapshot_every=5))
        d = LifecycleDriver.for_client(tsenv.client, factory, open_window=facts.open_window)
        genesis = (await read_state(tsenv.client, pid)).hash
        await d.lifecycle()
        assert (await read_health(tsenv.client, pid)).runs == 2
        past = PastStates()

        async def more(after: int, limit: int) -> list[dict[str, object]]:
            return (await read_decisions(tsenv.client, pid, after, limit)).records

        for answer in d.answers:
            state = await past.state_at(tsenv.client, pid, answer.index, more_records=more)
            assert (state.index, state.hash) == (answer.index, answer.state_post_hash)
            assert state.snapshot_index == answer.index // 5 * 5  # the nearest snapshot at or before it
        assert (await past.state_at(tsenv.client, pid, 0)).hash == genesis
        walked = past.fetches
        assert (await past.state_at(tsenv.client, pid, 7)).hash == d.answers[6].state_post_hash
        assert past.fetches == walked  # cached: nothing fetched again
        with pytest.raises(PastUnavailable):
            await past.state_at(tsenv.client, pid, -1)
