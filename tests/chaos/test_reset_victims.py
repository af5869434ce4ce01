"""Runs a reset terminated still have to replay.

`tests/chaos/data/nde-reset-victim.json` is a real run from a full chaos profile (seed 1). It is
one of the histories the task fence now prevents (`docs/architecture.md`). A cold worker applied
a fired flush timer for a query's catch-up. The delivery pump's commands then went out ahead of the
next task's Update, so the run failed every later workflow task with a non-determinism error until
a scheduled reset terminated it. The checker used to leave reset-terminated runs out of the replay
check, and that run's failure went unreported.
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory

from swoosh.chaos.evidence import is_reset_victim
from swoosh.workflows.replay.replayer import replay_projects

VICTIM = Path(__file__).parent / "data" / "nde-reset-victim.json"


async def test_a_reset_victim_that_does_not_replay_is_reported() -> None:
    history = WorkflowHistory.from_json("swoosh-project-chaos-8", json.loads(VICTIM.read_text()))
    assert is_reset_victim(history)
    [report] = await replay_projects({"chaos-8": [history]}, do_fold=False)
    assert report.replayed_ok == 0
    assert len(report.replay_failures) == 1
    assert "Update machine does not handle this event" in report.replay_failures[0]
