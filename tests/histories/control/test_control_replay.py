"""Replay the committed histories of the migration workflows with the current code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from swoosh.workflows.lifecycle import WORKFLOWS, MigrationControl, ShadowLedger
from swoosh.workflows.lifecycle.sandbox import workflow_runner

HERE = Path(__file__).parent
HISTORIES = sorted(HERE.glob("*-run*.json"))


def _events(name: str) -> list[dict]:  # type: ignore[type-arg]
    return list(json.loads((HERE / name).read_text())["events"])


def test_both_migration_workflows_have_committed_histories() -> None:
    assert {p.name for p in HISTORIES} >= {"migration-run0.json", "ledger-run0.json"}
    assert MigrationControl in WORKFLOWS and ShadowLedger in WORKFLOWS  # what every worker registers


def test_the_control_history_holds_two_changes_and_no_trace_of_the_refused_one() -> None:
    events = _events("migration-run0.json")
    completed = [e for e in events if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED"]
    assert len(completed) == 2  # the change with a stale expected_version was refused by the validator
    views = [
        json.loads(
            base64.b64decode(
                e["workflowExecutionUpdateCompletedEventAttributes"]["outcome"]["success"]["payloads"][0]["data"]
            )
        )
        for e in completed
    ]
    assert [(v["mode"], v["version"], v["changed_by"]) for v in views] == [
        ("shadow", 1, "ops-1"),
        ("route", 2, "ops-2"),
    ]
    upserts = [e for e in events if e["eventType"] == "EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES"]
    assert len(upserts) == 2


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_migration_workflow_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json("replay-" + path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=list(WORKFLOWS), data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
