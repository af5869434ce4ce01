"""`swoosh replay`: prove determinism of project histories two independent ways.

1. Temporal's `Replayer` re-runs the workflow code over each run's history (non-determinism fails).
2. The pure engine folds the accepted transitions of the project's runs (`worker.fold`) and must
   reach the hash the workflow reported, matching every snapshot on the way.

Histories come from the server (`--project`, `--all`, `--query`) or from JSON files/folders in the
format `temporal workflow show --output json` writes. Exit status 1 on any mismatch or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.messages import WORKFLOW_NAME
from swoosh.workflows.replay.fold import FoldResult, fold
from swoosh.workflows.replay.history import RunFacts, fetch_project_runs, history_files, load_history_file, run_facts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="history JSON files or folders")
    parser.add_argument("--project", action="append", default=[], help="fetch this project's runs from the server")
    parser.add_argument("--all", action="store_true", help="every SWOOSH project on the server")
    parser.add_argument("--query", default=None, help="a visibility query selecting workflows")
    parser.add_argument("--address", default=None, help="Temporal address (else settings)")
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    parser.add_argument("--no-fold", action="store_true", help="only run the Replayer")


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
) -> list[ProjectReport]:
    """Replay every history and fold every project; one report per project."""
    replayer = Replayer(
        workflows=[ProjectLifecycle], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )
    reports = []
    total = sum(len(v) for v in groups.values())
    done = 0
    for project, histories in groups.items():
        report = ProjectReport(project_id=project, runs=len(histories))
        facts: list[RunFacts] = []
        for h in histories:
            result = await replayer.replay_workflow(h, raise_on_replay_failure=False)
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


async def _from_server(args: argparse.Namespace) -> tuple[dict[str, list[WorkflowHistory]], dict[str, str]]:
    from swoosh.worker.settings import Settings
    from swoosh.workflows.lifecycle.client import read_head

    settings = Settings.load()
    client = await Client.connect(
        args.address or settings.temporal.address,
        namespace=args.namespace or settings.temporal.namespace,
        data_converter=pydantic_data_converter,
    )
    ids: list[str] = [workflow_id(p) for p in args.project]
    if args.all or args.query:
        query = args.query or f"WorkflowType = '{WORKFLOW_NAME}'"
        seen = set(ids)
        async for wf in client.list_workflows(query):
            if wf.id not in seen:
                seen.add(wf.id)
                ids.append(wf.id)
    groups: dict[str, list[WorkflowHistory]] = {}
    heads: dict[str, str] = {}
    for wid in ids:
        runs = await fetch_project_runs(client, wid)
        project = wid.removeprefix("swoosh-project-")
        groups[project] = runs
        try:
            heads[project] = (await read_head(client, project)).hash
        except Exception:
            pass
    return groups, heads


async def run(args: argparse.Namespace) -> list[ProjectReport]:
    groups: dict[str, list[WorkflowHistory]] = {}
    heads: dict[str, str] = {}
    if args.paths:
        histories = [h for p in history_files(args.paths) for h in load_history_file(p)]
        groups.update(group_by_project(histories))
    if args.project or args.all or args.query:
        server_groups, heads = await _from_server(args)
        groups.update(server_groups)
    return await replay_projects(
        groups, heads, do_fold=not args.no_fold, progress=not args.json and sys.stderr.isatty()
    )


def main(args: argparse.Namespace) -> int:
    if not (args.paths or args.project or args.all or args.query):
        print("swoosh replay: give history files/folders, --project, --all or --query", file=sys.stderr)
        return 2
    started = time.monotonic()
    reports = asyncio.run(run(args))
    elapsed = time.monotonic() - started
    transitions = sum(r.fold.transitions for r in reports if r.fold)
    ok = all(r.ok for r in reports) and bool(reports)
    if args.json:
        print(json.dumps({"ok": ok, "projects": [r.as_json() for r in reports], "transitions": transitions,
                          "seconds": round(elapsed, 3)}, indent=2))  # fmt: skip
    else:
        for r in reports:
            f = r.fold
            fold_txt = (
                f"fold {f.transitions} transitions, {f.snapshot_checks} snapshot checks, hash "
                f"{'matches' if f.ok else 'MISMATCH'} {f.final_hash}"
                if f
                else "fold skipped"
            )
            print(f"{'ok  ' if r.ok else 'FAIL'} {r.project_id}: {r.replayed_ok}/{r.runs} runs replayed; {fold_txt}")
            for problem in r.replay_failures + (f.problems if f else []):
                print(f"     {problem}")
            if f and f.final_hash != f.reported_hash:
                print(f"     workflow reported {f.reported_hash}")
        rate = transitions / elapsed if elapsed > 0 else 0.0
        print(f"replay projects={len(reports)} transitions={transitions} ok={str(ok).lower()} "
              f"seconds={elapsed:.2f} rate={rate:.0f}/s")  # fmt: skip
    return 0 if ok else 1


__all__ = ["add_arguments", "content_hash", "group_by_project", "main", "replay_projects"]
