"""`swoosh dev`: every port it opens is a setting, and a taken one is named before anything starts."""

from __future__ import annotations

import base64
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from swoosh.worker.dev import start_dev_server
from swoosh.worker.settings import Settings
from swoosh.workflows.testing.environment import binary

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "setting", ["SWOOSH_TEMPORAL_ADDRESS", "SWOOSH_DEV_UI_PORT", "SWOOSH_API_PORT", "SWOOSH_WORKER_METRICS_BIND"]
)
def test_dev_names_the_setting_of_a_taken_port(setting: str, taken_port: int, tmp_path: Path) -> None:
    env = {
        "SWOOSH_DATA_DIR": str(tmp_path),
        "SWOOSH_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWOOSH_DEV_UI_PORT": str(free_port()),
        "SWOOSH_API_PORT": str(free_port()),
        "SWOOSH_WORKER_METRICS_BIND": f"127.0.0.1:{free_port()}",
    }
    env[setting] = f"127.0.0.1:{taken_port}" if ":" in env[setting] else str(taken_port)
    settings = Settings.load(env)
    with pytest.raises(SystemExit, match=setting):
        start_dev_server(settings, settings.dev.ui_port, settings.worker.metrics_bind)
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_dev_holds_the_api_port_from_the_start(taken_port: int) -> None:
    """A port taken between the check and uvicorn's bind would strand the worker: bind it first, or say why not."""
    from swoosh.worker.dev import bind_api_socket

    with pytest.raises(SystemExit, match="SWOOSH_API_PORT"):
        bind_api_socket(Settings.load({"SWOOSH_API_PORT": str(taken_port)}))
    port = free_port()
    sock = bind_api_socket(Settings.load({"SWOOSH_API_PORT": str(port)}))
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
        with pytest.raises(SystemExit, match="SWOOSH_API_PORT"):
            bind_api_socket(Settings.load({"SWOOSH_API_PORT": str(port)}))  # nobody else gets it meanwhile
    finally:
        sock.close()


def test_dev_names_a_taken_codec_server_port(taken_port: int, tmp_path: Path) -> None:
    env = {
        "SWOOSH_DATA_DIR": str(tmp_path),
        "SWOOSH_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWOOSH_API_PORT": str(free_port()),
        "SWOOSH_CODEC_SERVER_PORT": str(taken_port),
    }
    settings = Settings.load(env)
    with pytest.raises(SystemExit, match="SWOOSH_CODEC_SERVER_PORT"):
        start_dev_server(settings, free_port(), "", codec_endpoint=f"http://127.0.0.1:{taken_port}")


def test_make_run_encrypts_with_a_dev_key_and_the_ui_reads_through_the_codec_server(tmp_path: Path) -> None:
    """`swoosh dev` end to end: a 0600 development key, encrypted history, the UI pointed at the codec server."""
    ports = {name: free_port() for name in ("temporal", "ui", "api", "codec")}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SWOOSH_", "TEMPORAL_"))},
        "SWOOSH_DATA_DIR": str(tmp_path / "data"),
        "SWOOSH_TEMPORAL_ADDRESS": f"127.0.0.1:{ports['temporal']}",
        "SWOOSH_DEV_UI_PORT": str(ports["ui"]),
        "SWOOSH_API_PORT": str(ports["api"]),
        "SWOOSH_CODEC_SERVER_PORT": str(ports["codec"]),
        "SWOOSH_WORKER_METRICS_BIND": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "swoosh.worker.cli", "dev"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    out = b""
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while b"Codec server" not in out:
            assert proc.poll() is None and time.monotonic() < deadline, out.decode()
            out += proc.stdout.readline()
        key = tmp_path / "data" / "encryption.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_text().split("=", 1)[1].strip() not in out.decode()  # the key is never printed
        codec = f"http://127.0.0.1:{ports['codec']}"
        ui_origin = f"http://127.0.0.1:{ports['ui']}"
        pre = httpx.options(f"{codec}/decode", headers={"Origin": ui_origin, "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == ui_origin
        settings = httpx.get(f"{ui_origin}/api/v1/settings", timeout=10).json()
        assert settings["Codec"]["Endpoint"] == codec
        show = [binary("temporal"), "workflow", "show", "-w", "swoosh-project-default", "--output", "json",
                "--address", f"127.0.0.1:{ports['temporal']}"]  # fmt: skip
        sealed = subprocess.run(show, capture_output=True, timeout=60, check=True).stdout
        assert base64.b64encode(b"binary/encrypted") in sealed and b"Lifecycle of project" not in sealed
        readable = subprocess.run([*show, "--codec-endpoint", codec], capture_output=True, timeout=60, check=True)
        assert base64.b64encode(b"binary/encrypted") not in readable.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
