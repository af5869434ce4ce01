"""`swoosh audit verify`: check a project's decision-record chain, and each record against its history.

The chain: every `dr_hash` is the hash of its record, every `prev_dr_hash` links to the record
before, indexes are consecutive. Against the history: the record at each index is the one the
workflow produced (same `dr_hash`, which covers hashes, signer, HLC and guards), and it agrees with
the Update answer for that index. The first break is reported precisely.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.workflows.decision import verify_chain
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.replay.history import fetch_project_runs, history_files, load_history_file, run_facts

ANSWER_FIELDS = ("state_pre_hash", "state_post_hash", "hlc", "transition", "idem_key")


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


def read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{n}: not JSON ({err})") from None
    return records


def audit(records: list[dict[str, Any]], histories: list[WorkflowHistory]) -> list[str]:
    """Problems found, first break first; empty when the chain and history agree."""
    problems: list[str] = []
    chain_break = verify_chain(records)
    if chain_break:
        problems.append(f"chain: {chain_break}")
    seen: dict[int, dict[str, Any]] = {}
    answers: dict[int, Any] = {}
    for h in histories:
        facts = run_facts(h)
        seen.update(facts.records)
        for a in facts.answers:
            if not a.duplicate:
                answers[a.index] = a
    for pos, rec in enumerate(records):
        index = rec.get("index")
        if not isinstance(index, int):
            problems.append(f"record {pos}: no integer index")
            break
        hist = seen.get(index)
        if hist is None:
            if answers or seen:
                problems.append(f"record {pos} (index {index}): no accepted transition at this index in the history")
                break
            continue
        if hist.get("dr_hash") != rec.get("dr_hash"):
            diff = sorted(k for k in set(hist) | set(rec) if hist.get(k) != rec.get(k))
            problems.append(f"record {pos} (index {index}): differs from the history in {', '.join(diff)}")
            break
        answer = answers.get(index)
        if answer is not None:
            bad = [f for f in ANSWER_FIELDS if getattr(answer, f) != rec.get(f)]
            if bad or answer.dr_hash != rec.get("dr_hash"):
                problems.append(
                    f"record {pos} (index {index}): disagrees with the Update answer on {', '.join(bad or ['dr_hash'])}"
                )
                break
    return problems


async def _histories(args: argparse.Namespace) -> list[WorkflowHistory]:
    if args.history:
        return [h for p in history_files(args.history) for h in load_history_file(p)]
    from swoosh.worker.settings import Settings

    settings = Settings.load()
    client = await Client.connect(
        args.address or settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=pydantic_data_converter,
    )
    return await fetch_project_runs(client, workflow_id(args.project))


def main(args: argparse.Namespace) -> int:
    if args.records is not None:
        path = args.records
    else:
        from swoosh.worker.settings import Settings

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
