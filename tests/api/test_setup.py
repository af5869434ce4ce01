"""`swoosh setup` on a fresh dev server, and processes refusing to run on a namespace it has not prepared."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from swoosh.worker.api_server import check_setup_at_start
from swoosh.worker.settings import Settings
from swoosh.worker.setup import run_setup
from swoosh.workflows.lifecycle.connection import connect
from swoosh.workflows.lifecycle.namespace import SetupRequired
from swoosh.workflows.testing.environment import binary
from tests.api.conftest import ServerFactory, Stack

pytestmark = pytest.mark.temporal
SECRET = "hunter2-never-logged"


@pytest.fixture(scope="module")
def bare(stack: Stack) -> Iterator[str]:
    """A dev server as a fresh cluster has it: no SWOOSH search attributes."""

    async def start() -> WorkflowEnvironment:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"), data_converter=pydantic_data_converter, ui=False
        )

    env = stack.bg.run(start())
    try:
        yield env.client.service_client.config.target_host
    finally:
        stack.bg.run(env.shutdown())


def _settings(target: str, tmp_path: Path, **env: str) -> Settings:
    return Settings.load({"SWOOSH_TEMPORAL_ADDRESS": target, "SWOOSH_DATA_DIR": str(tmp_path), **env})


def _worker(target: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SWOOSH_TEMPORAL_ADDRESS": target,
        "SWOOSH_TEMPORAL_TASK_QUEUE": f"setup-{uuid.uuid4().hex[:8]}",
        "SWOOSH_TEMPORAL_GRPC_META": f"x-swoosh-test={SECRET}",
        "SWOOSH_DATA_DIR": str(tmp_path),
        "SWOOSH_WORKER_MAX_CACHED_WORKFLOWS": "77",
    }
    cmd = [sys.executable, "-m", "swoosh.worker.cli", "worker", "--metrics-bind", ""]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_setup_prepares_a_fresh_namespace_and_processes_refuse_to_run_before(
    stack: Stack, bare: str, start_api: ServerFactory, tmp_path: Path
) -> None:
    # Before: the worker exits at once, naming the command; the API refuses to start.
    refused = _worker(bare, tmp_path)
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2, err
    assert "lacks SWOOSH's search attributes SwooshTop" in err and "run `swoosh setup`" in err
    with pytest.raises(SetupRequired, match="swoosh setup"):
        stack.bg.run(check_setup_at_start(_settings(bare, tmp_path), None))

    # An API built without that start check (in process) answers 503 setup_required, never a 500.
    async def connect_bare() -> object:
        return await connect(_settings(bare, tmp_path).temporal, environ={}, encryption=None)

    server = start_api(connect_bare, create_default_project=True)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        put = http.put("/v1/projects/early")
        assert put.status_code == 503 and put.json()["error"] == "setup_required", put.text
        assert put.headers["Retry-After"] == "30" and "swoosh setup" in put.json()["reason"]
        unready = http.get("/readyz")
        assert unready.status_code == 503 and "swoosh setup" in unready.json()["reason"]

        # swoosh setup: adds every search attribute, prepares the decision-record folder, says so.
        first = stack.bg.run(run_setup(_settings(bare, tmp_path)))
        assert any(line.startswith("search attributes: added SwooshTop (Keyword)") for line in first), first
        assert any("SwooshIndex (Int)" in line and "SwooshQuarantined (Bool)" in line for line in first)
        assert f"decision records: JSONL files under {tmp_path / 'decisions'} (nothing to create)" in first
        assert (tmp_path / "decisions").is_dir()
        again = stack.bg.run(run_setup(_settings(bare, tmp_path)))
        assert not any("added" in line for line in again), again  # idempotent
        assert any(line.startswith("search attributes: already present SwooshTop") for line in again)
        assert f"decision records: JSONL files under {tmp_path / 'decisions'} (nothing to create)" in again

        # The same API, unchanged, now works: no restart needed after `swoosh setup`.
        assert http.put("/v1/projects/after-setup").status_code == 201
        assert http.get("/readyz").json() == {"status": "ready"}

    # The worker now starts, logs its settings (never a secret) and stops cleanly on SIGTERM.
    worker = _worker(bare, tmp_path)
    try:
        deadline = time.monotonic() + 60
        assert worker.stdout is not None
        line = worker.stdout.readline()
        while "swoosh worker: task queue" not in line and time.monotonic() < deadline:
            line = worker.stdout.readline()
        assert "swoosh worker: task queue" in line
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    logs = _json_lines(err)
    start = next(e for e in logs if e.get("event") == "worker_start")
    assert start["temporal"] == {
        "address": bare,
        "namespace": "default",
        "tls": "off",
        "api_key": "none",
        "grpc_meta": ["x-swoosh-test"],
    }
    assert start["worker"]["max_cached_workflows"] == 77 and start["worker"]["graceful_shutdown_ms"] == 10000  # type: ignore[index]
    assert {"worker_stopping", "worker_stop"} <= {e.get("event") for e in logs}
    assert SECRET not in out + err


def test_setup_names_a_missing_namespace(stack: Stack, bare: str, tmp_path: Path) -> None:
    settings = _settings(bare, tmp_path, SWOOSH_TEMPORAL_NAMESPACE="no-such-namespace")
    with pytest.raises(SetupRequired, match="namespace 'no-such-namespace' does not exist"):
        stack.bg.run(run_setup(settings))


def test_setup_refuses_a_search_attribute_of_another_type(stack: Stack, bare: str, tmp_path: Path) -> None:
    namespace = f"wrong-types-{uuid.uuid4().hex[:6]}"

    async def prepare() -> None:
        client = await connect(_settings(bare, tmp_path).temporal, environ={}, encryption=None)
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period={"seconds": 86400})
        )
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace, search_attributes={"SwooshIndex": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD}
            )
        )

    stack.bg.run(prepare())
    settings = _settings(bare, tmp_path, SWOOSH_TEMPORAL_NAMESPACE=namespace)
    with pytest.raises(SetupRequired, match="SwooshIndex as Keyword, SWOOSH needs Int"):
        stack.bg.run(run_setup(settings))
