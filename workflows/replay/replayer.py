"""Prove determinism of project histories two independent ways (what `swoosh replay` runs).

1. Temporal's `Replayer` re-runs the workflow code over each run's history (non-determinism fails).
2. The pure engine folds the accepted transitions of the project's runs (`fold.py`) and must reach
   the hash the workflow reported, matching every snapshot on the way.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.replay.fold import FoldResult, fold
from swoosh.workflows.replay.history import RunFacts, decode_histories, run_facts


@dataclass
class ProjectReport:
    project_id: str
    runs: int = 0
    replayed_ok: int = 0
    replay_failures: list[str] = field(default_factory=list)
    fold: FoldResult | None = None

    @property
    def ok(self) -> bool:
        return not self.replay_failures and (self.fold is None or self.fold.ok)

    def as_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "runs": self.runs,
            "replayed_ok": self.replayed_ok,
            "replay_failures": self.replay_failures,
            "fold": self.fold.as_json() if self.fold else None,
            "ok": self.ok,
        }


def _progress(done: int, total: int, label: str, enabled: bool) -> None:
    if not enabled or total == 0:
        return
    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:<40}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


async def replay_projects(
    groups: dict[str, list[WorkflowHistory]],
    heads: dict[str, str] | None = None,
    do_fold: bool = True,
    progress: bool = False,
    converter: DataConverter | None = None,
) -> list[ProjectReport]:
    """Replay every history and fold every project; one report per project.

    `converter`: the processes' data converter (`connection.data_converter(encryption)`), so encrypted
    histories replay and fold; default plaintext.
    """
    converter = converter or data_converter()
    replayer = Replayer(workflows=[ProjectLifecycle], data_converter=converter, workflow_runner=workflow_runner())
    reports = []
    total = sum(len(v) for v in groups.values())
    done = 0
    for project, histories in groups.items():
        report = ProjectReport(project_id=project, runs=len(histories))
        facts: list[RunFacts] = []
        for h in histories:
            result = await replayer.replay_workflow(h, raise_on_replay_failure=False)
            await decode_histories([h], converter.payload_codec)
            if result.replay_failure is None:
                report.replayed_ok += 1
            else:
                report.replay_failures.append(f"run {h.run_id}: {result.replay_failure}")
            facts.append(run_facts(h))
            done += 1
            _progress(done, total, project, progress)
        if do_fold:
            try:
                report.fold = fold(facts, (heads or {}).get(project))
            except (ValueError, KeyError) as err:
                report.replay_failures.append(f"fold impossible: {err}")
        reports.append(report)
    return reports


def group_by_project(histories: list[WorkflowHistory]) -> dict[str, list[WorkflowHistory]]:
    groups: dict[str, list[WorkflowHistory]] = defaultdict(list)
    for h in histories:
        start = run_facts(h).start
        project = start.snapshot.document["meta"]["project_id"] if start else h.workflow_id
        groups[str(project)].append(h)
    return dict(groups)


__all__ = ["ProjectReport", "group_by_project", "replay_projects"]
