"""Process probes: the API's and the worker's `GET /livez` and `GET /readyz`."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import dev_keyring
from swoosh.worker.health import HealthServer
from swoosh.worker.run_worker import running_worker
from swoosh.worker.settings import Settings
from tests.api.conftest import ApiServer, ServerFactory, Stack


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_api_probes_are_open_even_with_tokens(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(tokens=["s3cret-token"])
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/v1/projects/any/state").status_code == 401  # the rest needs the token
        live = http.get("/livez")
        assert live.status_code == 200 and live.json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert ready.headers["Cache-Control"] == "no-store"


def test_api_unready_while_temporal_is_unreachable_but_live(stack: Stack, start_api: ServerFactory) -> None:
    port = _closed_port()

    async def unreachable() -> Client:
        return await Client.connect(f"127.0.0.1:{port}", data_converter=pydantic_data_converter)

    server = start_api(unreachable)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/livez").status_code == 200  # a Temporal blip must not restart the API
        ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
        assert ready.json()["status"] == "unready" and "Temporal cannot be reached" in ready.json()["reason"]


def test_api_unready_when_its_decision_store_is_unusable(
    stack: Stack, start_api: ServerFactory, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    server = start_api(decision_store=JsonlSink(blocker / "decisions"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 503 and "decision-record folder" in ready.json()["reason"]


def test_api_probes_are_in_the_openapi_document(api: ApiServer) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        paths = http.get("/openapi.json").json()["paths"]
    assert paths["/livez"]["get"].get("security") is None and paths["/readyz"]["get"].get("security") is None
    assert "503" in paths["/readyz"]["get"]["responses"]


def test_worker_probes_follow_temporal_and_the_store(stack: Stack, tmp_path: Path) -> None:
    settings = Settings.load(
        {
            "SWOOSH_TEMPORAL_ADDRESS": stack.target,
            "SWOOSH_TEMPORAL_TASK_QUEUE": f"probe-{uuid.uuid4().hex[:8]}",
            "SWOOSH_WORKER_HEALTH_BIND": "127.0.0.1:0",
            "SWOOSH_DATA_DIR": str(tmp_path / "data"),
        }
    )

    async def probe() -> tuple[int, int, dict[str, str]]:
        client = await Client.connect(stack.target, data_converter=pydantic_data_converter)
        async with running_worker(settings, client) as running:
            assert running.health is not None
            async with httpx.AsyncClient(base_url=f"http://{running.health.address}", timeout=10) as http:
                live, ready = await http.get("/livez"), await http.get("/readyz")
                (tmp_path / "data").write_text("the data folder became a file")  # the store breaks
                broken = await http.get("/readyz")
                return live.status_code, ready.status_code, broken.json() | {"code": str(broken.status_code)}

    live, ready, broken = stack.bg.run(probe())
    assert (live, ready) == (200, 200)
    assert broken["code"] == "503" and broken["status"] == "unready" and "decision-record folder" in broken["reason"]


async def test_health_server_answers_only_its_two_paths() -> None:
    reasons: list[str | None] = [None]

    async def check() -> str | None:
        return reasons[0]

    server = await HealthServer("127.0.0.1:0", lambda: None, [check]).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://{server.address}", timeout=5) as http:
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            reasons[0] = "Temporal cannot be reached"
            unready = await http.get("/readyz")
            assert unready.status_code == 503 and unready.json()["reason"] == "Temporal cannot be reached"
            assert (await http.get("/livez")).status_code == 200
            assert (await http.get("/metrics")).status_code == 404
            assert (await http.post("/livez")).status_code == 405
        reader, writer = await asyncio.open_connection(*server.address.rsplit(":", 1))
        writer.write(b"GET /livez HTTP/1.1\r\nX-Junk: " + b"x" * 20_000 + b"\r\n\r\n")
        await writer.drain()
        assert (await reader.read(100)).startswith(b"HTTP/1.1 400")
        writer.close()
    finally:
        await server.stop()


async def test_health_server_live_check_failing_makes_both_fail() -> None:
    server = await HealthServer("127.0.0.1:0", lambda: "the worker stopped (RuntimeError)", []).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://{server.address}", timeout=5) as http:
            for path in ("/livez", "/readyz"):
                resp = await http.get(path)
                assert resp.status_code == 503 and "worker stopped" in resp.json()["reason"], path
    finally:
        await server.stop()


@pytest.mark.parametrize("bind", ["nohost", "127.0.0.1:x"])
def test_worker_health_bind_must_be_host_port(bind: str) -> None:
    from swoosh.workflows.errors import ConfigError

    with pytest.raises(ConfigError, match=r"worker\.health_bind"):
        Settings.load({"SWOOSH_WORKER_HEALTH_BIND": bind})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_swoosh_api_process_is_ready_and_exports_its_clients_sdk_metrics(stack: Stack, tmp_path: Path) -> None:
    api_port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SWOOSH_TEMPORAL_ADDRESS": stack.target,
        "SWOOSH_API_PORT": str(api_port),
        "SWOOSH_API_SDK_METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "SWOOSH_DATA_DIR": str(tmp_path),
        "SWOOSH_KEYRING": str(dev_keyring(tmp_path / "keys").path),
    }
    cmd = [sys.executable, "-m", "swoosh.worker.cli", "api", "--log-level", "warning"]
    log = tmp_path / "api.log"
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            deadline = time.monotonic() + 60
            ready = None
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{api_port}/readyz", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            assert ready is not None and ready.json() == {"status": "ready"}, log.read_text()
            sdk = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5)
            assert sdk.status_code == 200 and "temporal_request" in sdk.text  # the SDK's client metrics
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert proc.returncode == 0, log.read_text()
