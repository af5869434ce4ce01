"""Pytest fixtures for testing SWOOSH lifecycles in seconds.

Opt in from your top-level conftest.py: `pytest_plugins = ["swoosh.workflows.testing.pytest_plugin"]`.

    async def test_my_lifecycle(swoosh_project):
        await swoosh_project.lifecycle()                      # BOOT → all regions READY → EXECUTION
        await swoosh_project.step("Execution_PlanLocked")     # valid inputs, signed, window opened
        await swoosh_project.assert_decisions(ends_with=["Execution_AllReady", "Execution_PlanLocked"])

Fixtures: `swoosh_env` (a time-skipping Temporal test server), `swoosh_facts` (controllable facts:
licence, MCP, BACKBEAT window, policy), `swoosh_signers` (a keyring of generated Ed25519 keys),
`swoosh_task_queue` (a worker running the real workflow and activities), `swoosh_project`
(a started project with a driver and assertion helpers), `swoosh_postgres` (one real PostgreSQL
server for the session, started from Debian's binaries; see `swoosh.workflows.testing.postgres`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.decision import verify_chain
from swoosh.workflows.engine import new_engine_config
from swoosh.workflows.lifecycle.client import ensure_project, read_decisions, read_health, read_state
from swoosh.workflows.messages import DecisionsPage, HealthView, LifecycleSettings, StateView
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping
from swoosh.workflows.testing.postgres import PostgresServer


@dataclass
class ProjectUnderTest:
    """A running project with a well-behaved caller and assertions on its decision records."""

    env: WorkflowEnvironment
    project_id: str
    driver: LifecycleDriver
    facts: FakeFacts

    async def step(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Accepted:
        """Propose `transition` (valid inputs unless given); fail the test if it is rejected."""
        return await self.driver.step(transition, inputs, **kw)

    async def try_step(self, transition: str, inputs: dict[str, Any] | None = None, **kw: Any) -> Accepted | Rejected:
        return await self.driver.try_step(transition, inputs, **kw)

    async def expect_rejection(
        self, transition: str, code: str, inputs: dict[str, Any] | None = None, **kw: Any
    ) -> Rejected:
        answer = await self.driver.try_step(transition, inputs, **kw)
        assert isinstance(answer, Rejected), f"{transition} was accepted, expected {code}"
        assert answer.error == code, f"{transition}: expected {code}, got {answer.error}: {answer.reason}"
        return answer

    async def lifecycle(self) -> None:
        await self.driver.lifecycle()

    async def loop(self, times: int = 1) -> None:
        await self.driver.loop(times)

    async def state(self) -> StateView:
        return await read_state(self.env.client, self.project_id)

    async def health(self) -> HealthView:
        return await read_health(self.env.client, self.project_id)

    async def decisions(self) -> DecisionsPage:
        return await read_decisions(self.env.client, self.project_id, 0, 1000)

    async def skip(self, duration: timedelta) -> None:
        """Let workflow time pass (timers fire) without waiting for it."""
        await self.env.sleep(duration)
        await asyncio.sleep(0.2)

    async def assert_decisions(
        self, *, exactly: Sequence[str] | None = None, ends_with: Sequence[str] | None = None
    ) -> None:
        """The decision records chain, and their transitions are `exactly` these or end with these."""
        records = (await self.decisions()).records
        problem = verify_chain(records)
        assert problem is None, f"decision chain broken: {problem}"
        names = [r["transition"] for r in records]
        if exactly is not None:
            assert names == list(exactly), f"decisions {names} != {list(exactly)}"
        if ends_with is not None:
            assert names[-len(ends_with) :] == list(ends_with), f"decisions {names} do not end with {list(ends_with)}"
        head = await self.state()
        if records:
            assert records[-1]["state_post_hash"] == head.hash, "last decision record is not the current head"


@pytest.fixture(scope="session")
def swoosh_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (its `dsn` is a secret: it holds the password)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest_asyncio.fixture
async def swoosh_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def swoosh_facts() -> FakeFacts:
    return FakeFacts()


@pytest.fixture
def swoosh_signers() -> Signers:
    return Signers.generate()


@pytest_asyncio.fixture
async def swoosh_task_queue(
    swoosh_env: WorkflowEnvironment, swoosh_facts: FakeFacts, tmp_path: Path
) -> AsyncIterator[str]:
    async with lifecycle_worker(swoosh_env.client, facts=swoosh_facts, sink_dir=tmp_path / "decisions") as tq:
        yield tq


@pytest_asyncio.fixture
async def swoosh_project(
    swoosh_env: WorkflowEnvironment, swoosh_task_queue: str, swoosh_signers: Signers, swoosh_facts: FakeFacts
) -> ProjectUnderTest:
    project_id = f"test-{uuid.uuid4().hex[:10]}"
    await ensure_project(
        swoosh_env.client,
        project_id,
        swoosh_signers.keyring(),
        swoosh_task_queue,
        new_engine_config(),
        LifecycleSettings(),
    )
    factory = ProposalFactory(swoosh_signers, project_id)
    driver = LifecycleDriver.for_client(swoosh_env.client, factory, open_window=swoosh_facts.open_window)
    return ProjectUnderTest(swoosh_env, project_id, driver, swoosh_facts)
