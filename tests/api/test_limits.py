"""The API's own bounds: connections served at once (uvicorn's limit_concurrency) and the project-count quota."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from temporalio.client import Client

from swoosh.api.server.problems import QuotaProblem
from swoosh.api.server.quota import ProjectQuota
from swoosh.worker.api_server import build_server
from swoosh.worker.settings import Settings
from tests.api.conftest import ServerFactory, Stack


@pytest.fixture
def limited_api() -> Iterator[str]:
    """`swoosh api`'s own server, configured to serve two connections at once."""
    settings = Settings.load(environ={"SWOOSH_API_LIMIT_CONCURRENCY": "2"})
    server = build_server(settings, None, None, port=0)
    assert server.config.limit_concurrency == 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


def test_connections_beyond_the_limit_are_answered_503_at_once(limited_api: str) -> None:
    with (
        httpx.Client(base_url=limited_api, timeout=10) as first,
        httpx.Client(base_url=limited_api, timeout=10) as second,
    ):
        assert first.get("/livez").status_code == 200  # one connection open (kept alive)
        assert second.get("/livez").status_code == 503  # the second reaches the limit
        first.close()
        time.sleep(0.2)
        assert second.get("/livez").status_code == 200  # room again


def _running(stack: Stack) -> int:
    async def count() -> int:
        client = await stack.connect()
        return (await client.count_workflows("WorkflowType = 'ProjectLifecycle' AND ExecutionStatus = 'Running'")).count

    return stack.bg.run(count())


def test_a_new_project_beyond_the_quota_is_409_and_nothing_starts(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(max_projects=_running(stack) + 1)
    first, second = f"t-{uuid.uuid4().hex[:12]}", f"t-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{first}").status_code == 201
        refused = http.put(f"/v1/projects/{second}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "project_quota" and "the quota is" in refused.json()["reason"]
        assert http.get(f"/v1/projects/{second}/state").status_code == 404  # nothing was started
        assert http.put(f"/v1/projects/{first}").status_code == 200  # an existing project is still answered


def test_a_burst_of_new_projects_stops_exactly_at_the_quota(stack: Stack, start_api: ServerFactory) -> None:
    """Eight creations at once with room for three: three 201, five 409. Each creation waits until
    visibility counts it before the next one counts (quota.py), so a lagging count cannot let more pass."""
    server = start_api(max_projects=_running(stack) + 3)
    ids = [f"t-{uuid.uuid4().hex[:12]}" for _ in range(8)]
    codes: dict[str, int] = {}

    def create(project: str) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            codes[project] = http.put(f"/v1/projects/{project}").status_code

    threads = [threading.Thread(target=create, args=(p,)) for p in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [201, 201, 201, 409, 409, 409, 409, 409], codes
    with httpx.Client(base_url=server.url, timeout=30) as http:
        started = [p for p in ids if http.get(f"/v1/projects/{p}/state").status_code == 200]
    assert sorted(started) == sorted(p for p, code in codes.items() if code == 201)


class _LaggingCount:
    """Stands in for the visibility count only (the unit under test is the waiting, not Temporal):
    a started project shows up in the count `lag` queries after its start."""

    def __init__(self, running: int, lag: int) -> None:
        self.running, self.lag, self.pending = running, lag, 0

    def start(self) -> None:
        self.pending = self.lag

    async def count_workflows(self, query: str) -> Any:
        if self.pending:
            self.pending -= 1
            if not self.pending:
                self.running += 1
        return SimpleNamespace(count=self.running)


async def test_the_quota_waits_for_visibility_to_count_a_new_project() -> None:
    quota = ProjectQuota(limit=2, settle_s=5.0)
    count = _LaggingCount(running=1, lag=3)
    client = cast(Client, count)
    async with quota.lock:
        counted = await quota.check(client)
        count.start()  # the start is not counted for the next three queries
        await quota.settled(client, counted)
    assert count.running == 2
    with pytest.raises(QuotaProblem):  # without the wait, this check would have seen 1 and let a third in
        await quota.check(client)


async def test_the_quota_wait_is_bounded() -> None:
    quota = ProjectQuota(limit=5, settle_s=0.2)
    count = _LaggingCount(running=1, lag=0)  # a project ended meanwhile: the count never grows
    started = time.monotonic()
    await quota.settled(cast(Client, count), 1)
    assert 0.2 <= time.monotonic() - started < 2.0
