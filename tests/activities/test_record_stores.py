"""The three decision-record stores apply one chain rule: every overlapping index compared, links checked.

JSONL files, a real PostgreSQL server and a BUBBLE endpoint (the test kit's stand-in over HTTP).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError

from swoosh.activities.decisions import DecisionStore
from swoosh.activities.records_bubble import BubbleStore
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.activities.records_postgres import PostgresStore
from swoosh.workflows.testing.bubble import serve_bubble
from swoosh.workflows.testing.postgres import PostgresServer

from .chains import chain, forked


@pytest_asyncio.fixture(params=["jsonl", "postgres", "bubble"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, swoosh_postgres: PostgresServer
) -> AsyncIterator[DecisionStore]:
    kind = request.param
    if kind == "jsonl":
        yield JsonlSink(tmp_path / "decisions")
    elif kind == "postgres":
        pg = PostgresStore(swoosh_postgres.dsn)
        try:
            yield pg
        finally:
            await pg.aclose()
    else:
        async with serve_bubble(token="bubble-token") as url:
            bubble = BubbleStore(url, token="bubble-token")
            try:
                yield bubble
            finally:
                await bubble.aclose()


def project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


async def refused(store: DecisionStore, pid: str, records: list[dict[str, Any]]) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await store.deliver(pid, records)
    assert info.value.non_retryable
    return info.value


async def test_store_writes_a_chain_and_skips_what_it_already_holds(store: DecisionStore) -> None:
    pid, records = project(), chain(10)
    first = await store.deliver(pid, records[:6])
    again = await store.deliver(pid, records[3:10])
    assert (first.delivered, first.skipped, first.last_index) == (6, 0, 6)
    assert (again.delivered, again.skipped, again.last_index) == (4, 3, 10)
    assert [r["dr_hash"] for r in await store.page(pid, 0, 100)] == [r["dr_hash"] for r in records]


async def test_store_refuses_a_forked_chain_that_only_overlaps_what_it_holds(store: DecisionStore) -> None:
    """The reproduced bug: after a 10-record chain, a forked chain 1..6 was answered skipped=6."""
    pid, records = project(), chain(10)
    await store.deliver(pid, records)
    err = await refused(store, pid, chain(6, "reset"))
    assert err.type == "DecisionChainFork" and "index 1" in str(err)
    assert [r["dr_hash"] for r in await store.page(pid, 0, 100)] == [r["dr_hash"] for r in records]


async def test_store_refuses_a_fork_in_the_middle_of_a_batch(store: DecisionStore) -> None:
    pid, records = project(), chain(10)
    await store.deliver(pid, records)
    err = await refused(store, pid, forked(records, 6)[:8])
    assert err.type == "DecisionChainFork" and "index 6" in str(err)


async def test_store_refuses_a_record_that_does_not_link_to_its_predecessor(store: DecisionStore) -> None:
    pid, records = project(), chain(5)
    await store.deliver(pid, records)
    stray = chain(1, "elsewhere", start=6, prev="sha256-" + "0" * 64)
    err = await refused(store, pid, stray)
    assert err.type == "DecisionChainFork" and "index 5" in str(err)
    assert len(await store.page(pid, 0, 100)) == 5


async def test_store_refuses_a_gap(store: DecisionStore) -> None:
    pid, records = project(), chain(10)
    await store.deliver(pid, records[:3])
    err = await refused(store, pid, records[5:])
    assert err.type == "DecisionChainGap" and "lacks record 5" in str(err)


async def test_store_pages_in_order_without_holes(store: DecisionStore) -> None:
    pid, records = project(), chain(150)
    for k in range(0, 150, 50):
        await store.deliver(pid, records[k : k + 50])
    page = await store.page(pid, 70, 25)
    assert [r["index"] for r in page] == list(range(71, 96))
    assert page == records[70:95]
    assert await store.page(pid, 150, 10) == []
    assert await store.page(project(), 0, 10) == []


async def test_store_setup_is_idempotent(store: DecisionStore) -> None:
    first = await store.setup()
    second = await store.setup()
    assert store.kind in first.lower() or "bubble" in first.lower()
    assert "created" not in second


async def test_store_keeps_receipts_by_interval_and_refuses_another_at_the_same_start(store: DecisionStore) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swoosh.workflows.receipts import sign_receipt, unsigned_receipt

    pid, records = project(), chain(10)
    await store.deliver(pid, records)
    key = Ed25519PrivateKey.generate()
    first = sign_receipt(key, unsigned_receipt(pid, 1, [r["dr_hash"] for r in records[:4]]))
    second = sign_receipt(key, unsigned_receipt(pid, 5, [r["dr_hash"] for r in records[4:]]))
    await store.deliver_receipts(pid, [second])
    await store.deliver_receipts(pid, [first, second])  # again: idempotent
    assert await store.receipts(pid) == [first, second]
    other = sign_receipt(key, unsigned_receipt(pid, 5, [r["dr_hash"] for r in records[4:9]]))
    with pytest.raises(ApplicationError) as info:
        await store.deliver_receipts(pid, [other])
    assert info.value.non_retryable and info.value.type == "DecisionChainFork"
    assert await store.receipts(pid) == [first, second]
    assert await store.receipts(project()) == []
