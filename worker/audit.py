"""`swoosh audit verify`: decision records against the history, or (`--receipts`) offline against signed receipts.

Against the history (`swoosh.workflows.replay.audit`): the chain, and every record equal to the one the
workflow produced. With `--receipts`: only the records, the receipts and SWOOSH's receipt public key
are needed — no Temporal — and every record's own hash, every link, every receipt's signature and every
receipt's Merkle root are checked (`swoosh.workflows.receipts.check_records`); a changed record is named.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory

from swoosh.worker.settings import Settings
from swoosh.workflows.crypto import public_key_of
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.connection import connect
from swoosh.workflows.receipts import check_records
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
    parser.add_argument(
        "--receipts",
        type=Path,
        nargs="?",
        const=True,
        default=None,
        help="check offline against signed receipts (a JSONL file; default <sink>/<project>.receipts.jsonl); "
        "the history is then read only if --history is given",
    )
    parser.add_argument(
        "--public-key",
        default=None,
        help="the receipt key's id (hmmm:pubkey:…) or a file holding it (default <data_dir>/dev/receipt.pub)",
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


def public_key(given: str | None) -> str:
    """The receipt signer id: given as text, or read from a file; ValueError when it is not one."""
    text = given if given is not None else str(Path(Settings.load().data_dir) / "dev" / "receipt.pub")
    if public_key_of(text) is None:
        try:
            text = Path(text).read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ValueError(f"--public-key {given or text}: {err.strerror}") from None
    if public_key_of(text) is None:
        raise ValueError("--public-key: not a signer id hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>")
    return text


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(args: argparse.Namespace) -> int:
    sink = args.sink_dir or Path(Settings.load().data_dir) / "decisions"
    path = args.records if args.records is not None else sink / f"{args.project}.jsonl"
    try:
        records = read_records(path)
    except (OSError, ValueError) as err:
        print(f"swoosh audit: cannot read records: {err}", file=sys.stderr)
        return 2
    problems: list[str] = []
    summary: dict[str, Any] = {"project_id": args.project, "records": len(records)}
    if args.receipts is not None:
        where = sink / f"{args.project}.receipts.jsonl" if args.receipts is True else Path(args.receipts)
        try:
            receipts = _read_jsonl(where)
            signer = public_key(args.public_key)
        except (OSError, ValueError) as err:
            print(f"swoosh audit: cannot read receipts: {err}", file=sys.stderr)
            return 2
        found, checked = check_records(records, receipts, signer)
        problems += found
        covered = max((int(r["to_index"]) for r in receipts), default=0)
        summary.update(receipts=len(receipts), receipts_verified=checked, covered_up_to=covered, signer=signer)
    if args.receipts is None or args.history:
        problems += audit(records, asyncio.run(_histories(args)))
    summary.update(ok=not problems, problems=problems)
    if args.json:
        print(json.dumps(summary))
    elif problems:
        print(f"FAIL {args.project}: {len(records)} records; problems, first first:")
        for p in problems:
            print(f"     {p}")
    elif args.receipts is not None:
        print(
            f"ok   {args.project}: {len(records)} records chain; {summary['receipts_verified']} signed receipts by "
            f"{summary['signer']} verify (records 1..{summary['covered_up_to']})"
            + (" and match the history" if args.history else "")
        )
    else:
        print(f"ok   {args.project}: {len(records)} records chain and match the history")
    return 1 if problems else 0
