"""The API while the Temporal dev server restarts under load: 503 + Retry-After, never a 500.

A chaos run once answered `500 internal` "Temporal answered UNKNOWN: transport error" on `GET /state`
and `POST /transition` while the dev server restarted. Here real processes (dev server, worker,
API) take reads and transitions from several callers while the server is stopped and started twice:
SIGTERM, then SIGKILL with a pause longer than the SDK's own retries (10 s), so calls fail back to
the API. Every answer must be one the contract allows. Which error a call ends with depends on
timing (mostly UNAVAILABLE, sometimes UNKNOWN); tests/api/test_transport_failures.py provokes the
UNKNOWN case every time.
"""

from __future__ import annotations

import asyncio
import collections
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from swoosh.api.client import ProposalFactory, load_signers
from swoosh.chaos.stack import Stack
from swoosh.workflows.testing.driver import valid_inputs

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(240)]
ALLOWED = {200, 202, 400, 429, 503}


async def _accepted(http: httpx.AsyncClient, f: ProposalFactory, transition: str) -> dict[str, Any]:
    state = (await http.get(f"/v1/projects/{f.project_id}/state")).json()
    inputs, _ = valid_inputs(f, transition, state["projection"], 0, 0, "backbeat:W-1")
    body = f.body(transition, state["hash"], inputs)
    r = await http.post(f"/v1/projects/{f.project_id}/transition", json=body)
    assert r.status_code == 202, r.text
    return body


async def test_temporal_restart_under_load_is_503_never_500(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", workers=1) as stack:
        f = ProposalFactory(load_signers(stack.keys_dir), "restart-p1", prefix="restart")
        seen: collections.Counter[tuple[str, int]] = collections.Counter()
        bad: list[str] = []
        stop = asyncio.Event()
        async with stack.http(timeout_s=30) as http:
            assert (await http.put("/v1/projects/restart-p1")).status_code == 201
            accepted = await _accepted(http, f, "Boot_ConfigOk")  # resent below: a duplicate each time
            stale = f.body("Boot_Licensed", "sha256-" + "0" * 64, {"license_id": "LIC-1"})  # a 400 each time
            calls = [
                ("GET state", lambda: http.get("/v1/projects/restart-p1/state")),
                ("GET legacy state", lambda: http.get("/state", params={"project_id": "restart-p1"})),
                ("POST duplicate", lambda: http.post("/v1/projects/restart-p1/transition", json=accepted)),
                ("POST legacy stale", lambda: http.post("/transition", json={**stale, "project_id": "restart-p1"})),
            ]

            async def caller(name: str, call: Any) -> None:
                while not stop.is_set():
                    try:
                        r = await call()
                    except httpx.TransportError:
                        continue  # the API process itself is never restarted here; a client timeout is not an answer
                    seen[(name, r.status_code)] += 1
                    if r.status_code not in ALLOWED or (r.status_code == 503 and "Retry-After" not in r.headers):
                        bad.append(f"{name}: {r.status_code} {r.text[:300]}")
                    await asyncio.sleep(0)

            tasks = [asyncio.create_task(caller(name, call)) for name, call in calls for _ in range(3)]
            try:
                await asyncio.sleep(1.0)
                await stack.restart_temporal()  # SIGTERM
                await asyncio.sleep(1.0)
                await stack.restart_temporal(kill=True, down_s=12.0)
                # the callers go on until every kind of call is answered normally again
                deadline = time.monotonic() + 60
                marks = {name: sum(n for (k, s), n in seen.items() if k == name and s != 503) for name, _ in calls}
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    now = {name: sum(n for (k, s), n in seen.items() if k == name and s != 503) for name, _ in calls}
                    if all(now[name] > marks[name] for name in now):
                        break
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        assert bad == [], bad
        unavailable = sum(n for (_, status), n in seen.items() if status == 503)
        assert unavailable > 0, f"the restarts were never seen by a caller: {dict(seen)}"
        assert seen[("POST duplicate", 202)] > 0 and seen[("POST legacy stale", 400)] > 0, dict(seen)
        assert seen[("GET state", 200)] > 0 and seen[("GET legacy state", 200)] > 0, dict(seen)
