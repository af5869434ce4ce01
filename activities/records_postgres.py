"""The PostgreSQL decision-record store: one table shared by every worker and API replica on any host.

A delivery is one transaction: it takes a per-project advisory lock (deliveries of one project are
serialised across every worker), reads what the table holds at the batch's indexes and the one
before, applies the chain rule (`plan_delivery`: equal `dr_hash` skipped, a different one a fork,
a record that does not link to the stored one before it a gap) and inserts the new rows. The table
enforces the same by itself: `(project_id, idx)` is the primary key, and a deferred foreign key ties
each row's `(idx - 1, prev_dr_hash)` to the stored row before it, so even a writer that skipped the
rule could not store a forked or holed chain. Pages are an index range scan: O(page).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio.exceptions import ApplicationError

from swoosh.activities.decisions import (
    StoreConfigError,
    plan_delivery,
    receipt_conflict,
    result_of,
    same_receipt,
)
from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.messages import DeliveryResult

TABLE = "swoosh_decision_records"
SCHEMA_LOCK = 0x5357_4F4F_5348  # advisory lock key for schema creation ("SWOOSH")
MAX_PAGE = 1000

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    project_id   text        NOT NULL,
    idx          bigint      NOT NULL CHECK (idx >= 1),
    dr_hash      text        NOT NULL,
    prev_dr_hash text,
    prev_idx     bigint      GENERATED ALWAYS AS (CASE WHEN idx > 1 THEN idx - 1 END) STORED,
    transition   text        NOT NULL,
    record       jsonb       NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, idx),
    UNIQUE (project_id, idx, dr_hash),
    CHECK ((idx = 1) = (prev_dr_hash IS NULL)),
    FOREIGN KEY (project_id, prev_idx, prev_dr_hash) REFERENCES {TABLE} (project_id, idx, dr_hash)
        DEFERRABLE INITIALLY DEFERRED
)
"""


RECEIPTS = "swoosh_receipts"
RECEIPTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {RECEIPTS} (
    project_id  text        NOT NULL,
    from_index  bigint      NOT NULL CHECK (from_index >= 1),
    to_index    bigint      NOT NULL CHECK (to_index >= from_index),
    merkle_root text        NOT NULL,
    receipt     jsonb       NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, from_index)
)
"""


def _unavailable(err: BaseException) -> ApplicationError:
    """A connection or server problem: retryable (the pump backs off); the DSN never appears."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return ApplicationError(
        f"PostgreSQL decision-record store unavailable: {type(err).__name__}: {text[:300]}", type="SinkUnavailable"
    )


class PostgresStore:
    """Decision records in PostgreSQL (`kind = "postgres"`), through a small connection pool."""

    kind = "postgres"

    def __init__(self, dsn: str, *, timeout_s: float = 10.0, min_size: int = 1, max_size: int = 4) -> None:
        if not dsn:
            raise StoreConfigError("records.postgres_dsn is empty")
        self._dsn = dsn
        self.timeout_s = timeout_s
        self._pool: AsyncConnectionPool | None = None
        self._pool_args = (min_size, max_size)
        self._schema_ready = False
        self._open_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # the DSN holds a password: never print it
        return f"PostgresStore(timeout_s={self.timeout_s})"

    async def _pool_now(self) -> AsyncConnectionPool:
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._pool is None:
                min_size, max_size = self._pool_args
                pool = AsyncConnectionPool(
                    self._dsn,
                    min_size=min_size,
                    max_size=max_size,
                    timeout=self.timeout_s,
                    open=False,
                    check=AsyncConnectionPool.check_connection,  # a connection cut meanwhile is replaced
                    kwargs={"connect_timeout": max(1, int(self.timeout_s)), "application_name": "swoosh"},
                )
                await pool.open(wait=False)
                self._pool = pool
            return self._pool

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # ------------------------------------------------------------------ schema
    async def setup(self) -> str:
        """Create the table if it is missing (idempotent, safe to run from several processes at once)."""
        pool = await self._pool_now()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                cur = await conn.execute("SELECT to_regclass(%s)", (TABLE,))
                row = await cur.fetchone()
                existed = row is not None and row[0] is not None
                if not existed:
                    await conn.execute(SCHEMA)
                await conn.execute(RECEIPTS_SCHEMA)  # also for tables made before receipts existed
        except psycopg.Error as err:
            raise _unavailable(err) from None
        self._schema_ready = True
        return (
            f"decision records: PostgreSQL table {TABLE} {'already there' if existed else 'created'} "
            f"(receipts in {RECEIPTS})"
        )

    async def _ensure_schema(self) -> None:
        if not self._schema_ready:
            await self.setup()

    # ------------------------------------------------------------------ deliveries
    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if not records:
            return DeliveryResult(delivered=0, skipped=0, last_index=0)
        await self._ensure_schema()
        first = min(int(r["index"]) for r in records)
        last = max(int(r["index"]) for r in records)
        pool = await self._pool_now()
        try:
            async with pool.connection() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (project_id,))
                cur = await conn.execute(
                    f"SELECT idx, dr_hash FROM {TABLE} WHERE project_id = %s AND idx BETWEEN %s AND %s",
                    (project_id, max(1, first - 1), last),
                )
                held = {int(i): str(h) for i, h in await cur.fetchall()}
                head = None
                if first - 1 not in held and first > 1:
                    cur = await conn.execute(f"SELECT max(idx) FROM {TABLE} WHERE project_id = %s", (project_id,))
                    row = await cur.fetchone()
                    head = int(row[0]) if row is not None and row[0] is not None else 0
                fresh, skipped = plan_delivery(project_id, records, held, head)
                if fresh:
                    async with conn.cursor() as c:
                        await c.executemany(
                            f"INSERT INTO {TABLE} (project_id, idx, dr_hash, prev_dr_hash, transition, record) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            [
                                (
                                    project_id,
                                    int(r["index"]),
                                    str(r["dr_hash"]),
                                    r.get("prev_dr_hash"),
                                    str(r["transition"]),
                                    Jsonb(r, dumps=_dumps),
                                )
                                for r in fresh
                            ],
                        )
        except ApplicationError:
            raise
        except psycopg.errors.IntegrityError as err:
            # Only a writer bypassing the per-project lock gets here; the table refused the chain.
            raise ApplicationError(
                f"project {project_id}: the store's constraints refused records {first}..{last}: "
                f"{str(err).splitlines()[0][:300]}",
                type="DecisionChainFork",
                non_retryable=True,
            ) from None
        except (psycopg.Error, OSError, TimeoutError) as err:
            raise _unavailable(err) from None
        return result_of(records, fresh, skipped)

    # ------------------------------------------------------------------ reads
    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        await self._ensure_schema()
        pool = await self._pool_now()
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT record FROM {TABLE} WHERE project_id = %s AND idx > %s ORDER BY idx LIMIT %s",
                (project_id, after_index, max(0, min(limit, MAX_PAGE))),
            )
            return [dict(row[0]) for row in await cur.fetchall()]

    # ------------------------------------------------------------------ receipts
    async def deliver_receipts(self, project_id: str, receipts: list[dict[str, Any]]) -> None:
        await self._ensure_schema()
        pool = await self._pool_now()
        try:
            async with pool.connection() as conn, conn.transaction():
                async with conn.cursor() as c:
                    await c.executemany(
                        f"INSERT INTO {RECEIPTS} (project_id, from_index, to_index, merkle_root, receipt) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (project_id, from_index) DO NOTHING",
                        [
                            (project_id, int(r["from_index"]), int(r["to_index"]), str(r["merkle_root"]), Jsonb(r))
                            for r in receipts
                        ],
                    )
                cur = await conn.execute(
                    f"SELECT receipt FROM {RECEIPTS} WHERE project_id = %s AND from_index = ANY(%s)",
                    (project_id, [int(r["from_index"]) for r in receipts]),
                )
                held = {int(row[0]["from_index"]): dict(row[0]) for row in await cur.fetchall()}
        except (psycopg.Error, OSError, TimeoutError) as err:
            raise _unavailable(err) from None
        for r in receipts:
            have = held.get(int(r["from_index"]))
            if have is not None and not same_receipt(have, r):
                raise receipt_conflict(project_id, have, r)

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        await self._ensure_schema()
        pool = await self._pool_now()
        async with pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT receipt FROM {RECEIPTS} WHERE project_id = %s ORDER BY from_index", (project_id,)
            )
            return [dict(row[0]) for row in await cur.fetchall()]

    async def count(self, project_id: str | None = None) -> int:
        """How many records the table holds (for one project, or all): for checks and reports."""
        pool = await self._pool_now()
        async with pool.connection() as conn:
            if project_id is None:
                cur = await conn.execute(f"SELECT count(*) FROM {TABLE}")
            else:
                cur = await conn.execute(f"SELECT count(*) FROM {TABLE} WHERE project_id = %s", (project_id,))
            row = await cur.fetchone()
            return int(row[0]) if row else 0


def _dumps(value: Any) -> str:
    return canonical_json(value).decode("utf-8") if isinstance(value, dict) else json.dumps(value)
