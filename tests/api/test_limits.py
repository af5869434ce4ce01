"""The API's own bounds: connections served at once (uvicorn's limit_concurrency) and the project-count quota."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

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
