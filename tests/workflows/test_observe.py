"""Workflow-side spans and log lines: one per accepted transition, whatever replays or retries happen.

The worker runs the real workflow with Temporal's OpenTelemetry plugin (as `connect()` adds it when
tracing is on) and spans go to an in-memory exporter. Without sticky cache every workflow task
replays the whole history; a `Replayer` replays it once more; a workflow task that fails after its
transition span ended is retried: none of them may add a span or a log line.
"""

from __future__ import annotations

import gc
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import (
    Replayer,
    Worker,
)

from swoosh.activities.decisions import DeliveryActivities
from swoosh.activities.guards import GuardActivities
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle import ProjectLifecycle, telemetry
from swoosh.workflows.lifecycle.client import ensure_project
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker
from tests.faults import FailSnapshotOnce
from tests.spans import attrs, memory_exporter


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def applied(self, project: str) -> list[dict[str, Any]]:
        out = []
        for r in self.records:
            fields = getattr(r, "swoosh", None)
            if isinstance(fields, dict) and fields.get("event") == "transition_applied":
                if fields.get("project_id") == project:
                    out.append(fields)
        return out


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    logger = logging.getLogger("temporalio.workflow")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def traced(client: Client) -> Client:
    memory_exporter()
    return Client(**{**client.config(), "plugins": telemetry.client_plugins()})


def transitions_of(project: str) -> list[ReadableSpan]:
    spans = memory_exporter().get_finished_spans()
    return [s for s in spans if s.name == "swoosh.transition" and attrs(s).get("swoosh.project_id") == project]


async def run_lifecycle(client: Client, tq: str, facts: FakeFacts, project: str, signers: Signers) -> None:
    await ensure_project(client, project, signers.keyring(), tq)
    driver = LifecycleDriver.for_client(client, ProposalFactory(signers, project), open_window=facts.open_window)
    await driver.lifecycle()


async def test_one_span_and_one_log_line_per_transition_without_sticky_cache_and_none_on_replay(
    tsenv: WorkflowEnvironment, tmp_path: Path, lines: Lines
) -> None:
    client, facts, signers = traced(tsenv.client), FakeFacts(), Signers.generate()
    project = f"obs-{uuid.uuid4().hex[:8]}"
    async with lifecycle_worker(client, facts=facts, sink_dir=tmp_path, max_cached_workflows=0) as tq:
        await run_lifecycle(client, tq, facts, project, signers)
    spans = transitions_of(project)
    indexes = [attrs(s)["swoosh.index"] for s in spans]
    assert sorted(indexes) == list(range(1, 14)), indexes  # 13 accepted transitions, each once
    logged = lines.applied(project)
    assert sorted(x["index"] for x in logged) == list(range(1, 14))
    for fields in logged:
        span = next(s for s in spans if attrs(s)["swoosh.index"] == fields["index"])
        assert fields["trace_id"] == format(span.context.trace_id, "032x")  # type: ignore[union-attr]
        assert fields["state_post_hash"] == attrs(span)["swoosh.state_post_hash"]
        assert {"state_pre_hash", "transition", "hlc", "window_id"} <= fields.keys()

    history = await client.get_workflow_handle(workflow_id(project)).fetch_history()
    gc.collect()  # workflow coroutines the worker abandoned are finalized now, not during the replay
    before, logged_before = len(memory_exporter().get_finished_spans()), len(lines.records)
    replayer = Replayer(
        workflows=[ProjectLifecycle],
        data_converter=data_converter(),
        workflow_runner=workflow_runner(),
        plugins=telemetry.client_plugins(),
    )
    await replayer.replay_workflow(history)
    gc.collect()
    extra = [(s.name, attrs(s)) for s in memory_exporter().get_finished_spans()[before:]]
    assert extra == []
    assert len(lines.records) == logged_before


async def test_a_retried_workflow_task_adds_no_span(tsenv: WorkflowEnvironment, tmp_path: Path, lines: Lines) -> None:
    client, facts, signers = traced(tsenv.client), FakeFacts(), Signers.generate()
    project = f"obs-{uuid.uuid4().hex[:8]}"
    tq = f"obs-{uuid.uuid4().hex[:8]}"
    FailSnapshotOnce.failed = False
    dropped = telemetry.dropped_duplicates()
    async with Worker(
        client,
        task_queue=tq,
        workflows=[ProjectLifecycle],
        activities=[GuardActivities(facts).evaluate, DeliveryActivities(JsonlSink(tmp_path)).deliver],
        workflow_runner=workflow_runner(),
        interceptors=[FailSnapshotOnce()],
    ):
        # snapshot_every=2: the run snapshots in the workflow task of the second transition.
        await ensure_project(client, project, signers.keyring(), tq, settings=LifecycleSettings(snapshot_every=2))
        driver = LifecycleDriver.for_client(client, ProposalFactory(signers, project), open_window=facts.open_window)
        await driver.step("Boot_ConfigOk")
        await driver.step("Boot_Licensed", {"license_id": "LIC-1"})
    assert FailSnapshotOnce.failed
    assert telemetry.dropped_duplicates() > dropped  # the retry did re-create an exported span
    indexes = sorted(attrs(s)["swoosh.index"] for s in transitions_of(project))
    assert indexes == [1, 2]
    assert sorted(x["index"] for x in lines.applied(project)) == [1, 2]
