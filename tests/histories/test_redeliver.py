"""`swoosh audit verify|redeliver` against the configured decision-record store (PostgreSQL here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from swoosh.activities.records_postgres import PostgresStore
from swoosh.worker.audit import live_records, redeliver, store_records
from swoosh.worker.cli import main
from swoosh.workflows.replay.history import load_history_file
from swoosh.workflows.testing.postgres import PostgresServer

HERE = Path(__file__).parent
PROJECT = "history-lifecycle"


def _histories() -> list:  # type: ignore[type-arg]
    return [h for p in sorted(HERE.glob("lifecycle-run*.json")) for h in load_history_file(p)]


@pytest.fixture
def pg_settings(swoosh_postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The configured store is the test server's PostgreSQL (the DSN in a file, as in production)."""
    (tmp_path / "dsn").write_text(swoosh_postgres.dsn)
    monkeypatch.setenv("SWOOSH_RECORDS_STORE", "postgres")
    monkeypatch.setenv("SWOOSH_RECORDS_POSTGRES_DSN_FILE", str(tmp_path / "dsn"))
    monkeypatch.delenv("SWOOSH_CONFIG", raising=False)
    return swoosh_postgres.dsn


async def test_redeliver_refills_a_store_restored_from_an_older_backup(pg_settings: str) -> None:
    await _clear(pg_settings)
    records = live_records(_histories())
    assert sorted(records) == list(range(1, 22))
    store = PostgresStore(pg_settings)
    try:
        await store.deliver(PROJECT, [records[i] for i in range(1, 8)])  # what the old backup held
        delivered, head = await redeliver(store, PROJECT, _histories())
        assert (delivered, head) == (14, 21)
        assert [r["index"] for r in await store_records(store, PROJECT)] == list(range(1, 22))
        assert await redeliver(store, PROJECT, _histories()) == (0, 21)  # idempotent
    finally:
        await store.aclose()


def test_audit_verify_reads_the_configured_store(pg_settings: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_clear(pg_settings))
    history = [str(p) for p in sorted(HERE.glob("lifecycle-run*.json"))]
    assert main(["audit", "redeliver", "--project", PROJECT, "--history", *history]) == 0
    assert "delivered 21 record(s)" in capsys.readouterr().out
    assert main(["audit", "verify", "--project", PROJECT, "--history", *history]) == 0
    assert "21 records chain and match the history" in capsys.readouterr().out


async def _clear(dsn: str) -> None:
    store = PostgresStore(dsn)
    try:
        await store.setup()
    finally:
        await store.aclose()
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM swoosh_decision_records WHERE project_id = %s", (PROJECT,))
