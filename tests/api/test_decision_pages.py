"""Decision pages come from the configured store; a record nobody can give is an error, never a skipped hole."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.activities.records_postgres import PostgresStore
from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.decision import verify_chain
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.testing.environment import lifecycle_worker
from swoosh.workflows.testing.postgres import PostgresServer
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import step

RETAIN_TWO = LifecycleSettings(dr_retain=2, dr_flush_ms=0)


def _four_transitions(http: httpx.Client, stack: Stack) -> str:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    assert http.put(f"/v1/projects/{pid}").status_code == 201
    step(http, factory, "Boot_ConfigOk")
    for reason in ("a", "b", "c"):
        step(http, factory, "Control_Resume" if reason == "b" else "Control_Pause", {"reason": reason})
    deadline = time.monotonic() + 20
    while http.get(f"/v1/projects/{pid}/health").json()["delivered_index"] < 4:
        assert time.monotonic() < deadline, "decision records were not delivered"
        time.sleep(0.1)
    return pid


def test_decisions_page_without_a_store_is_an_error_not_a_skip(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(lifecycle_settings=RETAIN_TWO, decision_store=None)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        pid = _four_transitions(http, stack)
        r = http.get(f"/v1/projects/{pid}/decisions")
        assert r.status_code == 503 and r.json()["error"] == "records_unavailable"
        assert "records 1..2" in r.json()["reason"] and "no decision-record store" in r.json()["reason"]
        held = http.get(f"/v1/projects/{pid}/decisions", params={"after_index": 2}).json()
        assert [rec["index"] for rec in held["records"]] == [3, 4]


def test_decisions_page_the_store_lacks_is_an_error(stack: Stack, start_api: ServerFactory, tmp_path: Path) -> None:
    server = start_api(lifecycle_settings=RETAIN_TWO, decision_store=JsonlSink(tmp_path / "another-host"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        pid = _four_transitions(http, stack)
        r = http.get(f"/v1/projects/{pid}/decisions", params={"limit": 3})
        assert r.status_code == 503 and r.headers.get("Retry-After")
        assert r.json()["error"] == "records_unavailable" and "lacks record 1" in r.json()["reason"]


@pytest.fixture
def postgres_worker(stack: Stack, swoosh_postgres: PostgresServer) -> Iterator[str]:
    """A second worker of the session's dev server that delivers to PostgreSQL; yields its task queue."""
    task_queue = f"swoosh-pg-{uuid.uuid4().hex[:8]}"
    stop = asyncio.Event()
    ready: Future[None] = Future()

    async def run() -> None:
        client = await Client.connect(stack.target, data_converter=pydantic_data_converter)
        store = PostgresStore(swoosh_postgres.dsn)
        try:
            async with lifecycle_worker(client, facts=stack.facts, sink=store, task_queue=task_queue):
                ready.set_result(None)
                await stop.wait()
        except BaseException as err:
            if not ready.done():
                ready.set_exception(err)
            raise
        finally:
            await store.aclose()

    task = asyncio.run_coroutine_threadsafe(run(), stack.bg.loop)
    ready.result(30)
    try:
        yield task_queue
    finally:
        stack.bg.loop.call_soon_threadsafe(stop.set)
        task.result(30)


def test_decisions_pages_come_from_postgres(
    stack: Stack, start_api: ServerFactory, postgres_worker: str, swoosh_postgres: PostgresServer
) -> None:
    server = start_api(
        task_queue=postgres_worker, lifecycle_settings=RETAIN_TWO, decision_store=PostgresStore(swoosh_postgres.dsn)
    )
    with httpx.Client(base_url=server.url, timeout=30) as http:
        pid = _four_transitions(http, stack)
        page = http.get(f"/v1/projects/{pid}/decisions").json()
        assert page["first_retained_index"] == 3 and [r["index"] for r in page["records"]] == [1, 2, 3, 4]
        assert verify_chain(page["records"]) is None
        second = http.get(f"/v1/projects/{pid}/decisions", params={"after_index": 1, "limit": 1}).json()
        assert [r["index"] for r in second["records"]] == [2] and second["next_after_index"] == 2
