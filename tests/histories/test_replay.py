"""Replay every committed history with the current workflow code: a non-deterministic change fails here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.sandbox import workflow_runner
from workflows.lifecycle import ProjectLifecycle

HISTORIES = sorted(Path(__file__).parent.glob("*-run*.json"))


def test_replay_histories_are_committed() -> None:
    names = {p.name.split("-run")[0] for p in HISTORIES}
    assert {"lifecycle", "quarantine", "snapshots", "grace"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_replay_history_is_deterministic(path: Path) -> None:
    history = WorkflowHistory.from_json("replay-" + path.stem, json.loads(path.read_text()))
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"


async def test_replay_detects_a_changed_history(tmp_path: Path) -> None:
    """A history whose recorded command no longer matches the code is reported, not silently accepted."""
    source = Path(__file__).parent / "quarantine-run0.json"
    data = json.loads(source.read_text())
    for event in data["events"]:
        attrs = event.get("markerRecordedEventAttributes")
        if attrs:
            attrs["markerName"] = "not-a-local-activity"
            break
    else:
        pytest.fail("quarantine history has no local-activity marker to tamper with")
    history = WorkflowHistory.from_json("tampered", data)
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None
