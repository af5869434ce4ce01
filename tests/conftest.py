"""Shared fixtures: a time-skipping Temporal test server and a worker per test.

One server per test (about 0.3 s to start) keeps tests independent: the time-skipping server only
skips time when no workflow has pending work, so workflows left behind by an earlier test would
stall a later test's timers.
"""

from __future__ import annotations

import pytest
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.testing.environment import FakeFacts

# The test kit's fixtures are opt-in: a project that wants them names the plugin, as here.
pytest_plugins = ["swoosh.workflows.testing.pytest_plugin"]


# Short names for the `swoosh` pytest plugin's fixtures (workflows/testing/pytest_plugin.py), used across our tests.
@pytest.fixture
def tsenv(swoosh_env: WorkflowEnvironment) -> WorkflowEnvironment:
    return swoosh_env


@pytest.fixture
def facts(swoosh_facts: FakeFacts) -> FakeFacts:
    return swoosh_facts


@pytest.fixture
def signers(swoosh_signers: Signers) -> Signers:
    return swoosh_signers


@pytest.fixture
def task_queue(swoosh_task_queue: str) -> str:
    return swoosh_task_queue


@pytest.fixture
def factory(signers: Signers, request: pytest.FixtureRequest) -> ProposalFactory:
    project = "p-" + request.node.name.replace("[", "-").replace("]", "")[:50].replace("test_", "")
    return ProposalFactory(signers, project)
