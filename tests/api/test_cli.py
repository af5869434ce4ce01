"""`swoosh keygen`, `swoosh propose`, `swoosh state` and `swoosh api`, end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from swoosh.worker.api_server import build_server
from swoosh.worker.cli import main as swoosh
from swoosh.worker.keyring_file import load_keyring
from swoosh.worker.settings import Settings
from tests.api.conftest import ServerFactory, Stack

ROOT = Path(__file__).resolve().parents[2]


def test_cli_keygen_propose_state_end_to_end(
    stack: Stack, start_api: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = tmp_path / "keyring.json"
    key = tmp_path / "keys" / "alice.key"
    assert swoosh(["keygen", "--out", str(key), "--keyring", str(keyring), "--roles", "operator,boot"]) == 0
    signer = capsys.readouterr().out.strip()
    assert signer.startswith("hmmm:pubkey:")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ring = load_keyring(keyring)
    assert [(s.id, s.roles) for s in ring.signers] == [(signer, ("operator", "boot"))]
    assert swoosh(["keygen", "--out", str(key), "--keyring", str(keyring)]) == 2  # never overwrites silently
    capsys.readouterr()
    assert swoosh(["keygen", "--out", str(tmp_path / "bob.key"), "--keyring", str(keyring), "--roles", "council"]) == 0
    assert len(load_keyring(keyring).signers) == 2
    capsys.readouterr()

    server = start_api(keyring=load_keyring(keyring))
    pid = f"t-{uuid.uuid4().hex[:12]}"
    assert httpx.put(f"{server.url}/v1/projects/{pid}").status_code == 201
    common = ["--key", str(key), "--api", server.url, "--project", pid]
    assert swoosh(["propose", "Boot_ConfigOk", "--inputs", "{}", *common]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["accepted"] is True and answer["index"] == 1 and answer["decision_record"]["signer"] == signer

    assert swoosh(["propose", "Boot_ConfigOk", *common]) == 1
    rejected = json.loads(capsys.readouterr().out)
    assert rejected["error"] == "invalid_transition"

    assert (
        swoosh(["propose", "Control_Pause", "--inputs", '{"reason": "cli"}', "--window-id", "backbeat:W-1", *common])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["decision_record"]["window_id"] == "backbeat:W-1"

    assert swoosh(["state", "--api", server.url, "--project", pid, "--projection", "Control,meta"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["index"] == 2 and set(state["projection"]) == {"control", "meta"}
    assert state["phase"]["top"] == "PAUSED"
    assert swoosh(["state", "--api", server.url, "--project", "t-nope-" + uuid.uuid4().hex[:6]]) == 1
    capsys.readouterr()
    assert swoosh(["propose", "Boot_ConfigOk", "--inputs", "[1]", *common]) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_api_serves_and_stops_gracefully(stack: Stack, tmp_path: Path) -> None:
    keyring = tmp_path / "keyring.json"
    keyring.write_text(json.dumps({"signers": [{"id": stack.signers.id("operator"), "roles": ["*"]}]}))
    port = _free_port()
    token = "cli-token-" + uuid.uuid4().hex
    project = f"t-default-{uuid.uuid4().hex[:8]}"
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(f"{token}\nother-{token}\n")
    env = {
        **os.environ,
        "SWOOSH_TEMPORAL_ADDRESS": stack.target,
        "SWOOSH_TEMPORAL_TASK_QUEUE": stack.task_queue,
        "SWOOSH_API_PORT": str(port),
        "SWOOSH_API_TOKENS_FILE": str(tokens_file),
        "SWOOSH_KEYRING": str(keyring),
        "SWOOSH_DATA_DIR": str(tmp_path / "data"),
        "SWOOSH_DEFAULT_PROJECT": project,
    }
    env.pop("SWOOSH_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "swoosh.worker.cli", "api"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "swoosh api did not serve the default project"
            time.sleep(0.2)
        assert httpx.get(f"{url}/state").status_code == 401
        state = httpx.get(f"{url}/state", headers={"Authorization": f"Bearer other-{token}"})
        assert state.status_code == 200 and state.json()["project_id"] == project
        # Tokens reload without a restart: when their file changes, and on SIGHUP.
        tokens_file.write_text(f"new-{token}\n")
        deadline = time.monotonic() + 15
        while httpx.get(f"{url}/state", headers={"Authorization": f"Bearer new-{token}"}).status_code != 200:
            assert time.monotonic() < deadline, "the changed token file was not reloaded"
            time.sleep(0.2)
        assert httpx.get(f"{url}/state", headers={"Authorization": f"Bearer other-{token}"}).status_code == 401
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    assert any(x.get("event") == "api_start" for x in lines) and any(x.get("event") == "api_stop" for x in lines)
    reloads = [x for x in lines if x.get("event") == "tokens_reloaded"]
    assert [("changed" in x["msg"], "SIGHUP" in x["msg"], x["labels"]) for x in reloads] == [
        (True, False, "token-1"),
        (False, True, "token-1"),
    ]
    assert token not in (out + err).decode()


def test_cli_api_server_parses_http_with_httptools() -> None:
    server = build_server(Settings.load(environ={}), None, None, port=0)
    server.config.load()
    assert server.config.http_protocol_class.__name__ == "HttpToolsProtocol"
