"""Shared fixtures: a time-skipping Temporal test server and a worker per test.

One server per test (about 0.3 s to start) keeps tests independent: the time-skipping server only
skips time when no workflow has pending work, so workflows left behind by an earlier test would
stall a later test's timers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.factory import ProposalFactory, Signers
from worker.testing import FakeFacts, lifecycle_worker, start_time_skipping


@pytest_asyncio.fixture
async def tsenv() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def facts() -> FakeFacts:
    return FakeFacts()


@pytest.fixture
def signers() -> Signers:
    return Signers.generate()


@pytest_asyncio.fixture
async def task_queue(tsenv: WorkflowEnvironment, facts: FakeFacts, tmp_path: Path) -> AsyncIterator[str]:
    async with lifecycle_worker(tsenv.client, facts=facts, sink_dir=tmp_path / "decisions") as tq:
        yield tq


@pytest.fixture
def factory(signers: Signers, request: pytest.FixtureRequest) -> ProposalFactory:
    project = "p-" + request.node.name.replace("[", "-").replace("]", "")[:50].replace("test_", "")
    return ProposalFactory(signers, project)
