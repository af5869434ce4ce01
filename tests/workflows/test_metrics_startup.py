"""The brief's seven metrics exist from start-up, before any transition, at zero; then count for real."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from swoosh.api.client import ProposalFactory, Signers
from swoosh.api.server.metrics import ApiMetrics
from swoosh.worker.metrics_http import MetricsServer
from swoosh.workflows.lifecycle.client import ensure_project
from swoosh.workflows.lifecycle.runtime import MetricsRuntime
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, lifecycle_worker, start_time_skipping

BRIEF = (
    "swoosh_transition_total",
    "swoosh_guard_fail_total",
    "swoosh_state_advance_latency_seconds",
    "swoosh_retry_count",
    "swoosh_quarantine_total",
    "swoosh_recovery_time_seconds",
    "swoosh_wal_lag_records",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def _values(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, label: str) -> dict[str, float]:
    return {dict(k[1]).get(label, ""): v for k, v in samples.items() if k[0] == name}


async def test_the_seven_brief_metrics_are_exported_before_any_transition(tmp_path: Path) -> None:
    metrics = MetricsRuntime("swoosh-worker", "w-test")
    env = await start_time_skipping(metrics.runtime)
    port = _free_port()
    server = await MetricsServer(metrics).start(f"127.0.0.1:{port}")
    chart = default_statechart()
    try:
        signers, facts = Signers.generate(), FakeFacts()
        project = f"m-{uuid.uuid4().hex[:8]}"
        async with lifecycle_worker(env.client, facts=facts, sink_dir=tmp_path) as tq:
            metrics.zero_workflow_series("default", tq)
            await ensure_project(env.client, project, signers.keyring(), tq)
            await asyncio.sleep(1.2)  # the SDK exporter publishes on an interval
            async with httpx.AsyncClient() as http:
                before = _samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
                api = _samples(ApiMetrics().exposition().decode())
                exported = {k[0] for k in before} | {k[0] for k in api}
                for name in BRIEF:
                    assert any(e == name or e.startswith(name + "_") for e in exported), name
                transitions = _values(before, "swoosh_transition_total", "transition")
                assert set(transitions) == set(chart.transitions) and set(transitions.values()) == {0.0}
                assert set(_values(before, "swoosh_guard_fail_total", "guard").values()) == {0.0}
                latency = _values(before, "swoosh_state_advance_latency_seconds_count", "region")
                assert "boot" in latency and set(latency.values()) == {0.0}
                assert _values(before, "swoosh_recovery_time_seconds_count", "state") == {
                    "RECOVERY": 0.0,
                    "QUARANTINED": 0.0,
                }
                assert _values(before, "swoosh_wal_lag_records", "project_id") == {project: 0.0}
                assert _values(before, "swoosh_decision_backlog_records", "project_id") == {project: 0.0}
                assert set(_values(api, "swoosh_retry_count", "transition").values()) == {0.0}
                labels = dict(next(k for k in before if k[0] == "swoosh_transition_total")[1])
                assert labels["service"] == "swoosh-worker" and labels["swoosh_instance"] == "w-test"

                driver = LifecycleDriver.for_client(
                    env.client, ProposalFactory(signers, project), open_window=facts.open_window
                )
                await driver.step("Boot_ConfigOk")
                await asyncio.sleep(1.2)
                after = _samples((await http.get(f"http://127.0.0.1:{port}/metrics")).text)
        assert _values(after, "swoosh_transition_total", "transition")["Boot_ConfigOk"] == 1.0
        assert _values(after, "swoosh_state_advance_latency_seconds_count", "region")["boot"] == 1.0
        assert _values(after, "swoosh_state_advance_latency_seconds_count", "region")["council"] == 0.0
        assert _values(after, "swoosh_wal_lag_records", "project_id") == {project: 1.0}
    finally:
        await server.stop()
        await env.shutdown()
