"""`swoosh codec-server` as a process: serves with the configured keys; refuses to start without keys or on an
open address without tokens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from swoosh.workflows.lifecycle.codec import EncryptionSettings, new_key_entry

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWOOSH_")}
    return {**env, **extra}


def test_codec_server_serves_the_configured_keys(tmp_path: Path) -> None:
    entry = new_key_entry("cli")
    keys = tmp_path / "keys"
    keys.write_text(entry + "\n")
    port = _free_port()
    env = _env(
        SWOOSH_ENCRYPTION_KEYS_FILE=str(keys), SWOOSH_CODEC_SERVER_PORT=str(port), SWOOSH_API_TOKENS="t-cli-secret"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "swoosh.worker.cli", "codec-server"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                httpx.post(f"{url}/decode", content="{}", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        codec = EncryptionSettings.model_validate({"keys": [entry]}).codec()
        assert codec is not None
        plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
        sealed = codec.encrypt([plain])
        body = json_format.MessageToJson(Payloads(payloads=sealed))
        assert httpx.post(f"{url}/decode", content=body).status_code == 401
        resp = httpx.post(f"{url}/decode", content=body, headers={"Authorization": "Bearer t-cli-secret"})
        assert resp.status_code == 200 and list(json_format.Parse(resp.text, Payloads()).payloads) == [plain]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert entry.split("=", 1)[1] not in (out + err).decode() and "t-cli-secret" not in (out + err).decode()


def test_codec_server_refuses_to_start_without_keys_or_on_an_open_address() -> None:
    run = [sys.executable, "-m", "swoosh.worker.cli", "codec-server"]
    no_keys = subprocess.run(run, cwd=ROOT, env=_env(), capture_output=True, timeout=60)
    assert no_keys.returncode == 2 and b"encryption is off" in no_keys.stderr
    env = _env(SWOOSH_ENCRYPTION_KEYS=new_key_entry("k"), SWOOSH_CODEC_SERVER_HOST="0.0.0.0")
    open_bind = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert open_bind.returncode == 2 and b"refusing to serve the codec server on 0.0.0.0" in open_bind.stderr
