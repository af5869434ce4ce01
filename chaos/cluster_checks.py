"""After a cluster run: the harness's own reading of the PostgreSQL record store, the drain, the API pages.

The harness reads the decision-record table directly (`PostgresReader`, from the callers' host),
waits until every project's records are stored and nothing is left undelivered (`drain`), and pages
every project's records through each API replica to compare them with the table (`compare_pages`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from swoosh.activities.records_postgres import TABLE
from swoosh.chaos.stack import Stack
from swoosh.workflows.lifecycle.client import read_health

Log = Callable[[str], None]


class PostgresReader:
    """The harness's own view of the decision-record table (from the callers' host)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def records(self, project_id: str) -> list[dict[str, Any]]:
        """Every row of the project, in index order (duplicates, were there any, included)."""
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT record FROM {TABLE} WHERE project_id = %s ORDER BY idx", (project_id,))
            return [dict(row[0]) for row in await cur.fetchall()]

    async def heads(self) -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT project_id, max(idx) FROM {TABLE} GROUP BY project_id")
            return {str(p): int(i) for p, i in await cur.fetchall()}

    async def count(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=5) as conn:
            cur = await conn.execute(f"SELECT count(*) FROM {TABLE}")
            row = await cur.fetchone()
            return int(row[0]) if row else 0


async def drain(stack: Stack, pg: PostgresReader, projects: list[str], timeout_s: float, log: Log) -> dict[str, str]:
    """Wait until every project's records are stored, none undelivered or refused; "ok" or why not, per project."""
    client = await stack.client()
    status = dict.fromkeys(projects, "pending")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            heads = await pg.heads()
        except psycopg.Error as err:
            heads, note = {}, f"store unreadable: {type(err).__name__}"
        else:
            note = ""
        for p in projects:
            if status[p] == "ok":
                continue
            try:
                health = await read_health(client, p)
                stored = heads.get(p, 0)
                ok = health.undelivered == 0 and stored == health.index and health.delivery_refused is None
                status[p] = (
                    "ok" if ok else f"undelivered={health.undelivered} store={stored} head={health.index} {note}"
                )
            except Exception as err:
                status[p] = f"unreadable: {type(err).__name__}"
        if all(s == "ok" for s in status.values()):
            return status
        await asyncio.sleep(1.0)
    log(f"cluster: drain timed out after {timeout_s:.0f}s: {status}")
    return status


async def _pages(api_url: str, project_id: str, limit: int = 50) -> list[str] | str:
    """Every record of the project through one API replica, paged; the dr_hash list, or why not."""
    out: list[str] = []
    after = 0
    async with httpx.AsyncClient(base_url=api_url, timeout=30.0, trust_env=False) as http:
        while True:
            r = await http.get(f"/v1/projects/{project_id}/decisions", params={"after_index": after, "limit": limit})
            if r.status_code != 200:
                return f"{api_url}: {r.status_code} {r.text[:200]}"
            page = r.json()
            out += [rec["dr_hash"] for rec in page["records"]]
            if page["next_after_index"] >= page["head_index"] or not page["records"]:
                return out
            after = page["next_after_index"]


async def compare_pages(stack: Stack, pg: PostgresReader, projects: list[str]) -> dict[str, str]:
    """Per project: "identical" when every API replica pages exactly the stored records, else what differs."""
    result = {}
    for p in projects:
        stored = [r["dr_hash"] for r in await pg.records(p)]
        seen = [await _pages(url, p) for url in stack.api_urls]
        if any(isinstance(s, str) for s in seen):
            result[p] = "; ".join(s for s in seen if isinstance(s, str))
        elif all(s == stored for s in seen):
            result[p] = "identical"
        else:
            result[p] = f"replica pages {[len(s) for s in seen]} records vs {len(stored)} stored, or different hashes"
    return result
