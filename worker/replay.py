"""`swoosh replay`: the command line over `swoosh.workflows.replay` (see that package for what it proves)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

from temporalio.client import WorkflowHistory

from swoosh.worker.settings import Settings
from swoosh.workflows.ids import WORKFLOW_ID_PREFIX, workflow_id
from swoosh.workflows.lifecycle.client import read_head
from swoosh.workflows.lifecycle.connection import connect, data_converter
from swoosh.workflows.messages import WORKFLOW_NAME
from swoosh.workflows.replay.history import decode_histories, fetch_project_runs, history_files, load_history_file
from swoosh.workflows.replay.replayer import ProjectReport, group_by_project, replay_projects


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="history JSON files or folders")
    parser.add_argument("--project", action="append", default=[], help="fetch this project's runs from the server")
    parser.add_argument("--all", action="store_true", help="every SWOOSH project on the server")
    parser.add_argument("--query", default=None, help="a visibility query selecting workflows")
    parser.add_argument("--address", default=None, help="Temporal address (else settings)")
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--json", action="store_true", help="print a machine-readable summary")
    parser.add_argument("--no-fold", action="store_true", help="only run the Replayer")


async def _from_server(args: argparse.Namespace) -> tuple[dict[str, list[WorkflowHistory]], dict[str, str]]:

    settings = Settings.load()
    temporal = settings.temporal.model_copy(
        update={
            "address": args.address or settings.temporal.address,
            "namespace": args.namespace or settings.temporal.namespace,
        }
    )
    client = await connect(temporal, encryption=settings.encryption)
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
        project = wid.removeprefix(WORKFLOW_ID_PREFIX)
        groups[project] = runs
        try:
            heads[project] = (await read_head(client, project)).hash
        except Exception:
            pass
    return groups, heads


async def run(args: argparse.Namespace) -> list[ProjectReport]:
    groups: dict[str, list[WorkflowHistory]] = {}
    heads: dict[str, str] = {}
    converter = data_converter(Settings.load().encryption)  # encrypted histories need the keys
    if args.paths:
        histories = [h for p in history_files(args.paths) for h in load_history_file(p)]
        groups.update(group_by_project(await decode_histories(histories, converter.payload_codec)))
    if args.project or args.all or args.query:
        server_groups, heads = await _from_server(args)
        groups.update(server_groups)
    return await replay_projects(
        groups, heads, do_fold=not args.no_fold, progress=not args.json and sys.stderr.isatty(), converter=converter
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
