"""`swoosh audit verify`: the command line over `swoosh.workflows.replay.audit`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from temporalio.client import WorkflowHistory

from swoosh.worker.settings import Settings
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.connection import connect
from swoosh.workflows.replay.audit import audit, read_records
from swoosh.workflows.replay.history import fetch_project_runs, history_files, load_history_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["verify"])
    parser.add_argument("--project", required=True)
    parser.add_argument("--records", type=Path, default=None, help="JSONL decision records (else the local sink)")
    parser.add_argument(
        "--sink-dir", type=Path, default=None, help="decision-record folder (default <data_dir>/decisions)"
    )
    parser.add_argument(
        "--history", type=Path, nargs="*", default=None, help="history JSON files/folders (else the server)"
    )
    parser.add_argument("--address", default=None)
    parser.add_argument("--json", action="store_true")


async def _histories(args: argparse.Namespace) -> list[WorkflowHistory]:
    if args.history:
        return [h for p in history_files(args.history) for h in load_history_file(p)]

    settings = Settings.load()
    temporal = settings.temporal.model_copy(update={"address": args.address} if args.address else {})
    client = await connect(temporal)
    return await fetch_project_runs(client, workflow_id(args.project))


def main(args: argparse.Namespace) -> int:
    if args.records is not None:
        path = args.records
    else:
        sink = args.sink_dir or Path(Settings.load().data_dir) / "decisions"
        path = sink / f"{args.project}.jsonl"
    try:
        records = read_records(path)
    except (OSError, ValueError) as err:
        print(f"swoosh audit: cannot read records: {err}", file=sys.stderr)
        return 2
    histories = asyncio.run(_histories(args))
    problems = audit(records, histories)
    if args.json:
        print(
            json.dumps({"project_id": args.project, "records": len(records), "ok": not problems, "problems": problems})
        )
    elif problems:
        print(f"FAIL {args.project}: {len(records)} records; first break:")
        for p in problems:
            print(f"     {p}")
    else:
        print(f"ok   {args.project}: {len(records)} records chain and match the history")
    return 1 if problems else 0
