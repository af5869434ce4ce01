"""The first hour, as a newcomer lives it: `swoosh dev` on ports of their choosing, then the README's commands.

`swoosh dev` (what `make run` runs) starts for real in a subprocess — Temporal dev server, worker and
API, each port a setting, every file under a temporary data folder — and `swoosh demo` takes a new
project into EXECUTION and around the loop with the development keys it wrote. The other commands the
README shows (`window`, `propose --dry-run`, `vote`, `approve`, `sign` with a plain HTTP post, `state
--at`, `audit verify --receipts`) run against the same stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(300)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DevStack:
    env: dict[str, str]
    api: str
    data: Path
    log: Path

    @property
    def keys(self) -> Path:
        return self.data / "dev" / "keys"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    root = tmp_path_factory.mktemp("first-hour")
    api_port = free_port()
    env = {
        **os.environ,
        "SWOOSH_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "SWOOSH_DEV_UI_PORT": str(free_port()),
        "SWOOSH_API_PORT": str(api_port),
        "SWOOSH_WORKER_METRICS_BIND": f"127.0.0.1:{free_port()}",
        "SWOOSH_DATA_DIR": str(root / ".swoosh"),
        "SWOOSH_BACKBEAT_TEMPO_BPM": "60",  # a 4 s bar: the demo's loop waits less
    }
    for name in ("SWOOSH_API_URL", "SWOOSH_CONFIG", "SWOOSH_KEYRING", "SWOOSH_TOKEN", "SWOOSH_TOKEN_FILE"):
        env.pop(name, None)
    log = root / "dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swoosh.worker.cli", "dev"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 150
        while "SWOOSH is running" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield DevStack(env, f"http://127.0.0.1:{api_port}", root / ".swoosh", log)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def run(dev: DevStack, *args: str) -> subprocess.CompletedProcess[str]:
    """A `swoosh` command as the README shows it, with the same variables `swoosh dev` got."""
    return subprocess.run(
        [sys.executable, "-m", "swoosh.worker.cli", *args], env=dev.env, capture_output=True, text=True, timeout=180
    )


def test_first_hour_the_banner_says_what_to_do_next(dev: DevStack) -> None:
    banner = dev.log.read_text(errors="replace")
    assert f"API          {dev.api}" in banner and str(dev.data) in banner
    assert ".venv/bin/swoosh demo" in banner and "receipt.key" in banner


def test_first_hour_demo_reaches_execution_and_goes_around_the_loop(dev: DevStack) -> None:
    started = time.monotonic()
    done = run(dev, "demo", "--project", "newcomer")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    steps = [line.split()[1] for line in lines if line.strip()[:1].isdigit()]
    assert steps[:2] == ["Boot_ConfigOk", "Boot_Licensed"] and steps[12] == "Execution_AllReady"
    assert steps[-4:] == [
        "Execution_PlanLocked",
        "Execution_BeatReviewGate",
        "Execution_ApprovalsThreshold",
        "Execution_NextWindow",
    ]
    assert any("→ EXECUTION" in line for line in lines)
    for where in (
        "/state",
        "/decisions",
        "/diagram",
        "/state?at=5",
        "/namespaces/default/workflows/swoosh-project-newcomer",
    ):
        assert where in done.stdout, where
    assert time.monotonic() - started < 120
    state = httpx.get(f"{dev.api}/v1/projects/newcomer/state").json()
    assert (state["index"], state["phase"]["top"], state["phase"]["execution"]) == (17, "EXECUTION", "PLAN")
    assert run(dev, "demo", "--project", "newcomer").returncode == 1  # not a new project: says so


def test_first_hour_by_hand(dev: DevStack, tmp_path: Path) -> None:
    k, p = dev.keys, "byhand"
    assert httpx.put(f"{dev.api}/v1/projects/{p}").status_code == 201
    assert run(dev, "propose", "Boot_ConfigOk", "--key", str(k / "operator.key"), "--project", p).returncode == 0
    tried = run(dev, "propose", "Boot_Licensed", "--key", str(k / "operator.key"), "--project", p, "--dry-run")
    assert tried.returncode == 0 and json.loads(tried.stdout)["dry_run"] is True
    assert json.loads(run(dev, "state", "--project", p, "--projection", "meta").stdout)["index"] == 1
    assert run(dev, "propose", "Boot_Licensed", "--key", str(k / "operator.key"), "--project", p).returncode == 0
    assert run(dev, "propose", "Council_ProfilesLoaded", "--inputs", '{"roles": ["architect"]}', "--key",
               str(k / "council-1.key"), "--project", p).returncode == 0  # fmt: skip
    window = run(dev, "window", "--project", p)
    assert window.returncode == 0 and "gates Execution_PlanLocked" in window.stdout, window.stdout + window.stderr
    wid = json.loads(run(dev, "window", "--project", p, "--json").stdout)["window_id"]
    votes = run(dev, "vote", "--key", str(k / "council-1.key"), "--key", str(k / "council-2.key"), "--project", p,
                "--window-id", wid)  # fmt: skip
    assert votes.returncode == 0, votes.stderr
    (tmp_path / "votes.json").write_text(votes.stdout)
    elected = run(dev, "propose", "Council_QuorumCert", "--inputs", f"@{tmp_path / 'votes.json'}", "--key",
                  str(k / "council-1.key"), "--project", p, "--window-id", wid)  # fmt: skip
    assert elected.returncode == 0, elected.stdout + elected.stderr
    approvals = run(dev, "approve", "--key", str(k / "council-1.key"), "--key", str(k / "council-2.key"), "--project",
                    p, "--window-id", wid)  # fmt: skip
    assert approvals.returncode == 0 and len(json.loads(approvals.stdout)["approvals"]) == 2
    signed = run(dev, "sign", "Control_Pause", "--inputs", '{"reason": "lunch"}', "--key", str(k / "operator.key"),
                 "--project", p)  # fmt: skip
    assert signed.returncode == 0 and "curl -s -X POST" in signed.stderr
    sent = httpx.post(f"{dev.api}/v1/projects/{p}/transition", content=signed.stdout,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert sent.status_code == 202 and sent.json()["index"] == 5, sent.text
    past = json.loads(run(dev, "state", "--project", p, "--at", "2", "--projection", "boot").stdout)
    assert past["index"] == 2 and past["projection"]["boot"]["phase"] == "LICENSED"


def test_first_hour_receipts_verify_offline_with_the_dev_key(dev: DevStack) -> None:
    """The demo project has no snapshot yet; an operator's snapshot (a signal) makes its first receipt."""
    done = run(dev, "demo", "--project", "receipted", "--loops", "0")
    assert done.returncode == 0, done.stderr
    sig = subprocess.run(
        [str(Path(sys.executable).with_name("temporal")), "workflow", "signal", "--workflow-id",
         "swoosh-project-receipted", "--name", "snapshot", "--address", dev.env["SWOOSH_TEMPORAL_ADDRESS"]],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert sig.returncode == 0, sig.stderr
    deadline = time.monotonic() + 60
    while True:
        receipts = httpx.get(f"{dev.api}/v1/projects/receipted/receipts").json()["receipts"]
        if receipts and receipts[0]["signature"]:
            break
        assert time.monotonic() < deadline, receipts
        time.sleep(1)
    assert (receipts[0]["from_index"], receipts[0]["to_index"]) == (1, 13)
    verified = run(dev, "audit", "verify", "--project", "receipted", "--receipts")
    assert verified.returncode == 0 and "1 signed receipts" in verified.stdout, verified.stdout + verified.stderr
