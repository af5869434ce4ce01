"""End-to-end fixtures: the real Temporal dev server, a real worker, the real API under uvicorn.

The dev server and the worker live on a background event loop in their own thread, and every API
server runs uvicorn in a thread of its own, so tests may block (sync client, CLI) without starving
the worker. One dev server and one worker per session; a fresh random project per test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client._factory import ProposalFactory, Signers
from swoosh.api.server.app import create_app
from swoosh.workflows.testing.environment import FakeFacts, binary, lifecycle_worker, search_attribute_flags

T = TypeVar("T")


class BackgroundLoop:
    """An asyncio loop in a daemon thread; `run(coro)` blocks the caller until the coroutine is done."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="e2e-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 60.0) -> T:
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@dataclass
class SlowFacts(FakeFacts):
    """FakeFacts whose guard evaluation can be slowed down (to hold admission slots in a test)."""

    delay_s: float = 0.0

    async def facts(self, now_ms: int, **kw: Any) -> Any:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await super().facts(now_ms, **kw)

    def reset(self) -> None:
        for f in dataclasses.fields(FakeFacts()):
            setattr(self, f.name, getattr(FakeFacts(), f.name))
        self.delay_s = 0.0


@dataclass
class Stack:
    """The session's Temporal dev server and worker."""

    bg: BackgroundLoop
    env: WorkflowEnvironment
    target: str
    task_queue: str
    facts: SlowFacts
    data_dir: Path
    signers: Signers
    receipt_key: Ed25519PrivateKey  # signs the snapshot receipts of every project on this stack

    async def connect(self) -> Client:
        return await Client.connect(self.target, data_converter=pydantic_data_converter)

    def decision_store(self) -> JsonlSink:
        """The worker's decision records, read by the API for records the workflow no longer holds."""
        return JsonlSink(self.data_dir / "decisions")


class ApiServer:
    """uvicorn serving an app on 127.0.0.1:<ephemeral> in its own thread."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ApiServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bg = BackgroundLoop()
    data_dir = tmp_path_factory.mktemp("swoosh-data")
    facts = SlowFacts()
    task_queue = f"swoosh-api-{uuid.uuid4().hex[:8]}"
    receipt_key = Ed25519PrivateKey.generate()
    stop = asyncio.Event()
    ready: Future[None] = Future()

    async def start_env() -> WorkflowEnvironment:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            dev_server_extra_args=search_attribute_flags(),
            data_converter=pydantic_data_converter,
            ui=False,
        )

    env = bg.run(start_env())
    target = env.client.service_client.config.target_host

    async def run_worker() -> None:
        client = await Client.connect(target, data_converter=pydantic_data_converter)
        try:
            async with lifecycle_worker(
                client, facts=facts, sink_dir=data_dir / "decisions", task_queue=task_queue, receipt_key=receipt_key
            ):
                ready.set_result(None)
                await stop.wait()
        except BaseException as err:
            if not ready.done():
                ready.set_exception(err)
            raise

    worker_task = asyncio.run_coroutine_threadsafe(run_worker(), bg.loop)
    ready.result(60)
    try:
        yield Stack(bg, env, target, task_queue, facts, data_dir, Signers.generate(), receipt_key)
    finally:
        bg.loop.call_soon_threadsafe(stop.set)
        try:
            worker_task.result(30)
        finally:
            bg.run(env.shutdown())
            bg.close()


@pytest.fixture(autouse=True)
def _reset_facts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").facts.reset()


ServerFactory = Callable[..., ApiServer]


@pytest.fixture
def start_api(stack: Stack) -> Iterator[ServerFactory]:
    """Start an API server with `create_app` options of the test's choosing; stopped after the test."""
    started: list[ApiServer] = []

    def start(client: Any = None, **options: Any) -> ApiServer:
        kw: dict[str, Any] = {
            "task_queue": stack.task_queue,
            "keyring": stack.signers.keyring(),
            "decision_store": stack.decision_store(),
            "create_default_project": False,
        }
        kw.update(options)
        server = ApiServer(create_app(client or stack.connect, **kw)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def api(stack: Stack) -> Iterator[ApiServer]:
    """The session's API server (no tokens; creates the default project on start)."""
    app = create_app(
        stack.connect,
        task_queue=stack.task_queue,
        keyring=stack.signers.keyring(),
        decision_store=stack.decision_store(),
    )
    server = ApiServer(app).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http(api: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.url, timeout=60) as client:
        yield client


@pytest.fixture
def project(http: httpx.Client) -> str:
    """A fresh project created through PUT /v1/projects/{id}."""
    pid = f"t-{uuid.uuid4().hex[:12]}"
    resp = http.put(f"/v1/projects/{pid}")
    assert resp.status_code == 201, resp.text
    return pid


@pytest.fixture
def factory(stack: Stack, project: str) -> ProposalFactory:
    return ProposalFactory(stack.signers, project)
