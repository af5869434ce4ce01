"""`swoosh dev`: every port it opens is a setting, and a taken one is named before anything starts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from swoosh.worker.dev import start_dev_server
from swoosh.worker.settings import Settings


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
