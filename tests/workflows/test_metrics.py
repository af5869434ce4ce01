"""Workflow-side metrics count each accepted transition once, even when every task replays."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import httpx
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.lifecycle.client import ensure_project
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str, name: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} ([0-9.e+]+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[labels.get("transition") or labels.get("guard") or ""] = float(m.group(2))
    return out


async def test_metrics_counted_once_per_transition_without_sticky_cache(tmp_path: Path) -> None:
    port = _free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}")))
    env = await start_time_skipping(runtime)
    try:
        signers, facts = Signers.generate(), FakeFacts()
        factory = ProposalFactory(signers, "metrics")
        # max_cached_workflows=0: no sticky cache, so every workflow task replays the whole history.
        async with lifecycle_worker(env.client, facts=facts, sink_dir=tmp_path, max_cached_workflows=0) as tq:
            await ensure_project(env.client, "metrics", signers.keyring(), tq)
            d = LifecycleDriver.for_client(env.client, factory, open_window=facts.open_window)
            await d.lifecycle()
            facts.license_status = "denied"
            await d.try_step("License_Throttled", {"reason": "x"})
            await asyncio.sleep(0.5)
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        await env.shutdown()
    transitions = _samples(text, "swoosh_transition_total")
    assert sum(transitions.values()) == 13, transitions
    assert all(v == 1 for v in transitions.values())
    assert _samples(text, "swoosh_guard_fail_total") == {"license": 1.0}
