"""`swoosh audit verify|redeliver`: decision records against the history, offline against signed receipts,
or refilled into a store from the histories.

Against the history (`swoosh.workflows.replay.audit`): the chain, and every record equal to the one the
workflow produced. With `--receipts`: only the records, the receipts and SWOOSH's receipt public key
are needed — no Temporal — and every record's own hash, every link, every receipt's signature and every
receipt's Merkle root are checked (`swoosh.workflows.receipts.check_records`); a changed record is named.

Records come from a JSONL file (`--records`, `--sink-dir`) or else the configured decision-record
store (`[records]`: JSONL, PostgreSQL or BUBBLE). `redeliver` takes the records the store lacks after
its last one from the live histories (e.g. after the store was restored from an older backup) and
delivers them in order under the store's own chain rule (a fork is refused, never overwritten).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.exceptions import ApplicationError

from swoosh.activities.decisions import DecisionStore, decision_store
from swoosh.worker.settings import Settings
from swoosh.workflows.crypto import public_key_of
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.connection import connect, data_converter
from swoosh.workflows.receipts import check_records
from swoosh.workflows.replay.audit import audit, read_records
from swoosh.workflows.replay.history import (
    decode_histories,
    fetch_project_runs,
    history_files,
    load_history_file,
    run_facts,
)

PAGE = 1000
BATCH = 64


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["verify", "redeliver"])
    parser.add_argument("--project", required=True)
    parser.add_argument(
        "--records", type=Path, default=None, help="a JSONL file of decision records (else the configured store)"
    )
    parser.add_argument(
        "--sink-dir", type=Path, default=None, help="a folder of JSONL files (else the configured store)"
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
    settings = Settings.load()
    if args.history:
        histories = [h for p in history_files(args.history) for h in load_history_file(p)]
        return await decode_histories(histories, data_converter(settings.encryption).payload_codec)
    temporal = settings.temporal.model_copy(update={"address": args.address} if args.address else {})
    client = await connect(temporal, encryption=settings.encryption)
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


async def store_records(store: DecisionStore, project_id: str) -> list[dict[str, Any]]:
    """Every record the store holds for the project, in index order."""
    out: list[dict[str, Any]] = []
    while True:
        page = await store.page(project_id, int(out[-1]["index"]) if out else 0, PAGE)
        out += page
        if len(page) < PAGE:
            return out


def live_records(histories: list[WorkflowHistory]) -> dict[int, dict[str, Any]]:
    """The decision records of the project's live runs (a run a reset terminated is not live)."""
    records: dict[int, dict[str, Any]] = {}
    for h in histories:
        events = list(h.events)
        if events and events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED:
            continue
        for index, rec in run_facts(h).records.items():
            records.setdefault(index, rec)
    return records


async def redeliver(store: DecisionStore, project_id: str, histories: list[WorkflowHistory]) -> tuple[int, int]:
    """Deliver the records after the store's last one, from the histories: (delivered, new head)."""
    held = await store_records(store, project_id)
    head = int(held[-1]["index"]) if held else 0
    records = live_records(histories)
    missing = []
    for index in range(head + 1, max(records, default=head) + 1):
        if index not in records:
            break  # a hole in what the histories still hold (retention): deliver up to it
        missing.append(records[index])
    delivered = 0
    for k in range(0, len(missing), BATCH):
        result = await store.deliver(project_id, missing[k : k + BATCH])
        delivered += result.delivered
    return delivered, head + len(missing)


async def _records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """From the JSONL file or folder given, else from the configured store (OSError/ValueError if unreadable)."""
    if args.records is not None or args.sink_dir is not None:
        return read_records(args.records or args.sink_dir / f"{args.project}.jsonl")
    settings = Settings.load()
    store = decision_store(settings.records, Path(settings.data_dir))
    try:
        return await store_records(store, args.project)
    except Exception as err:
        raise ValueError(f"the {store.kind} store: {type(err).__name__}: {err}") from None
    finally:
        await store.aclose()


async def _redeliver(args: argparse.Namespace) -> int:
    settings = Settings.load()
    store = decision_store(settings.records, Path(settings.data_dir))
    try:
        delivered, head = await redeliver(store, args.project, await _histories(args))
    except ApplicationError as err:
        print(f"swoosh audit redeliver: the store refused: {err}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    print(f"ok   {args.project}: delivered {delivered} record(s) from the histories; the store ends at {head}")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "redeliver":
        if args.records is not None or args.sink_dir is not None:
            print("swoosh audit redeliver: writes to the configured store only (no --records/--sink-dir)")
            return 2
        return asyncio.run(_redeliver(args))
    sink = args.sink_dir or Path(Settings.load().data_dir) / "decisions"
    try:
        records = asyncio.run(_records(args))
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
