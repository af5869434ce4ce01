"""Record the committed histories of the migration workflows: `python -m tests.histories.control.record`.

`migration-run0.json` (the control workflow: changes, a refused change, queries) and `ledger-run0.json`
(a project's ledger: claims, a settlement with a divergence and a journal entry, a catch-up). Re-record
only for an intentional, versioned change of their code; `test_control_replay.py` fails on others.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from swoosh.workflows.lifecycle.migration_client import (
    change_migration,
    ensure_migration,
    migration_handle,
    read_migration,
)
from swoosh.workflows.lifecycle.shadow_client import (
    ledger_caught_up,
    ledger_claim,
    ledger_handle,
    ledger_journal,
    ledger_lookup,
    ledger_report,
    ledger_settle,
)
from swoosh.workflows.migration import MigrationChange, MigrationConfig, MigrationError
from swoosh.workflows.shadow import CatchUp, Divergence, JournalEntry, Settlement
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping

HERE = Path(__file__).parent
URL = "http://whoosh.internal:8080"


async def record(out_dir: Path = HERE) -> None:
    env = await start_time_skipping()
    try:
        client = env.client
        async with lifecycle_worker(client, facts=FakeFacts(), sink_dir=Path("/tmp") / uuid.uuid4().hex) as tq:
            await ensure_migration(client, tq, MigrationConfig())
            shadow = MigrationConfig(mode="shadow", legacy_url=URL)
            await change_migration(client, MigrationChange(config=shadow, by="ops-1", reason="shadow phase"))
            try:
                await change_migration(client, MigrationChange(config=MigrationConfig(), expected_version=7))
            except MigrationError:
                pass
            route = MigrationConfig(mode="route", legacy_url=URL, routed=("Council",))
            await change_migration(
                client, MigrationChange(config=route, by="ops-2", reason="council first", expected_version=1)
            )
            await read_migration(client)
            history = await migration_handle(client).fetch_history()
            (out_dir / "migration-run0.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
            await migration_handle(client).terminate("history recorded")

            project = "history-ledger"
            await ledger_claim(client, project, tq, "k1", "Boot_ConfigOk")
            await ledger_claim(client, project, tq, "k1", "Boot_ConfigOk")
            divergence = Divergence(
                idem_key="k1",
                transition="Boot_ConfigOk",
                kind="decision",
                mode="shadow",
                legacy="accepted",
                swoosh="rejected:schema",
            )
            await ledger_settle(
                client,
                project,
                tq,
                Settlement(
                    idem_key="k1",
                    transition="Boot_ConfigOk",
                    legacy_status=202,
                    legacy_accepted=True,
                    compared=True,
                    divergences=[divergence],
                ),
            )
            await ledger_claim(client, project, tq, "k2", "Control_Pause")
            journal = JournalEntry(
                idem_key="k2",
                transition="Control_Pause",
                body={"transition": "Control_Pause", "inputs": {"reason": "r"}},
            )
            await ledger_settle(
                client,
                project,
                tq,
                Settlement(
                    idem_key="k2",
                    transition="Control_Pause",
                    legacy_status=202,
                    legacy_accepted=True,
                    swoosh="journaled",
                    journal=journal,
                ),
            )
            await ledger_lookup(client, project, "k2")
            await ledger_journal(client, project)
            await ledger_caught_up(client, project, tq, CatchUp(through_seq=1, outcomes={"k2": "applied"}))
            await ledger_report(client, project)
            history = await ledger_handle(client, project).fetch_history()
            (out_dir / "ledger-run0.json").write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
            await ledger_handle(client, project).terminate("history recorded")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(record())
