"""Snapshot receipts through the real workflow: one per continue-as-new, signed by the worker, stored with records."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.lifecycle.client import ensure_project, read_health, read_receipts
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.receipts import check_records
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker


async def test_receipts_one_per_snapshot_signed_and_stored(
    tsenv: WorkflowEnvironment, signers: Signers, factory: ProposalFactory, facts: FakeFacts, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    sink = JsonlSink(tmp_path / "decisions")
    pid = factory.project_id
    async with lifecycle_worker(tsenv.client, facts=facts, sink=sink, receipt_key=key) as tq:
        await ensure_project(tsenv.client, pid, signers.keyring(), tq, settings=LifecycleSettings(snapshot_every=4))
        d = LifecycleDriver.for_client(tsenv.client, factory, open_window=facts.open_window)
        await d.lifecycle()
        await d.loop(1)
        health = await read_health(tsenv.client, pid)
        assert health.index == 17 and health.runs == 4  # snapshots after 4, 8, 12 and 16 transitions
        for _ in range(100):
            stored = sink.read_receipts(pid)
            if len(stored) == 4 and len(sink.read(pid, 0, 100)) == 17:
                break
            await tsenv.sleep(1)
            await asyncio.sleep(0.05)
        assert [(r["from_index"], r["to_index"]) for r in stored] == [(1, 4), (5, 8), (9, 12), (13, 16)]
        assert {r["signer"] for r in stored} == {signer_id(key.public_key())}
        records = sink.read(pid, 0, 100)
        assert check_records(records, stored, signer_id(key.public_key())) == ([], 4)
        held = await read_receipts(tsenv.client, pid)
        assert held == stored  # the workflow keeps the newest stored ones for its query
