"""The chaos stack: real processes; a project survives a worker SIGKILL and a dev-server SIGKILL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from swoosh.api.client import ProposalFactory, load_signers
from swoosh.chaos.stack import Stack
from swoosh.workflows.testing.driver import valid_inputs

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]


async def _step(http: httpx.AsyncClient, f: ProposalFactory, transition: str) -> dict[str, Any]:
    state = (await http.get(f"/v1/projects/{f.project_id}/state")).json()
    inputs, _ = valid_inputs(f, transition, state["projection"], 0, 0, "backbeat:W-1")
    body = f.body(transition, state["hash"], inputs)
    for _ in range(50):  # the worker may still be coming back: resend the same body (same idem_key)
        r = await http.post(f"/v1/projects/{f.project_id}/transition", json=body)
        if r.status_code not in (429, 503):
            break
    assert r.status_code == 202, r.text
    return dict(r.json())


async def test_stack_project_survives_worker_and_temporal_kill(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", workers=1) as stack:
        assert stack.keyring_path.exists() and (stack.keys_dir / "operator.key").exists()
        f = ProposalFactory(load_signers(stack.keys_dir), "stack-p1", prefix="stacktest")
        async with stack.http() as http:
            created = await http.put("/v1/projects/stack-p1")
            assert created.status_code in (200, 201)
            await _step(http, f, "Boot_ConfigOk")
            before = (await http.get("/v1/projects/stack-p1/state")).json()
            assert before["index"] == 1

            await stack.kill_worker(0)
            assert not stack.worker_running(0)
            await stack.start_worker(0)
            await stack.restart_temporal(kill=True)
            await stack.wait_ready()

            after = (await http.get("/v1/projects/stack-p1/state")).json()
            assert after["hash"] == before["hash"]
            answer = await _step(http, f, "Boot_Licensed")
            assert answer["index"] == 2 and answer["state_pre_hash"] == before["hash"]
    assert stack.pids() == {}
    assert (tmp_path / "stack" / "logs" / "temporal.log").exists()
