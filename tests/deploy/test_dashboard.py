"""Every metric the dashboard and the alerts query is one the processes really export.

A real worker and a real API's metrics are scraped after a run that makes each kind of series
appear: transitions, a guard rejection, a quarantine, a decision-record delivery that fails once (an
activity failure), a workflow task that fails once, more projects than the worker caches (sticky
cache misses) and a failing RPC from the API's client. The names found are the only ones the
dashboard and the alert rules may use.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from swoosh.activities.decisions import DeliveryActivities
from swoosh.activities.guards import GuardActivities
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.api.client import ProposalFactory, Signers
from swoosh.api.server.metrics import ApiMetrics
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.client import ensure_project
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.runtime import MetricsRuntime
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.messages import DeliveryResult, LifecycleSettings
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, start_time_skipping
from tests.deploy.conftest import DEPLOY
from tests.faults import FailSnapshotOnce

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "swoosh.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\b((?:swoosh|temporal)_[a-z0-9_]+)\b")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")
PROMETHEUS_OWN = {"up"}  # written by Prometheus itself for every target


class FlakyStore(JsonlSink):
    """The JSONL store, unavailable for its first delivery (the activity fails once and is retried)."""

    failed = False

    async def deliver(self, project_id: str, records: list[dict[str, Any]]) -> DeliveryResult:
        if not FlakyStore.failed:
            FlakyStore.failed = True
            raise ApplicationError("store down for a moment", type="SinkUnavailable")
        return await super().deliver(project_id, records)


def _names(text: str) -> set[str]:
    """Sample names exactly as exposed (prometheus_client's parser would rename counters to *_total)."""
    list(text_string_to_metric_families(text))  # the text must parse
    return {m.group(1) for m in (SAMPLE.match(line) for line in text.splitlines()) if m}


async def _exported(tmp_path: Path) -> set[str]:
    worker_metrics, api_metrics = MetricsRuntime("swoosh-worker", "w1"), MetricsRuntime("swoosh-api", "a1")
    env = await start_time_skipping(worker_metrics.runtime)
    tq = f"dash-{uuid.uuid4().hex[:8]}"
    signers, facts = Signers.generate(), FakeFacts()
    FailSnapshotOnce.failed, FlakyStore.failed = False, False
    try:
        worker_metrics.zero_workflow_series("default", tq)
        async with Worker(
            env.client,
            task_queue=tq,
            workflows=[ProjectLifecycle],
            activities=[GuardActivities(facts).evaluate, DeliveryActivities(FlakyStore(tmp_path)).deliver],
            workflow_runner=workflow_runner(),
            interceptors=[FailSnapshotOnce()],
            max_cached_workflows=1,  # two projects take turns: the cache misses
        ):
            drivers = []
            for i in range(2):
                project = f"dash-{i}-{uuid.uuid4().hex[:6]}"
                settings = LifecycleSettings(snapshot_every=2)
                await ensure_project(env.client, project, signers.keyring(), tq, settings=settings)
                factory = ProposalFactory(signers, project)
                drivers.append(LifecycleDriver.for_client(env.client, factory, open_window=facts.open_window))
            for step in ("Boot_ConfigOk", "Boot_Licensed"):
                for d in drivers:
                    await d.step(step)
            await drivers[0].step("Policy_Quarantine", {"reason": "a look"})
            facts.license_status = "denied"
            await drivers[1].try_step("License_Throttled", {"reason": "x"})
            api_client = await Client.connect(
                env.client.service_client.config.target_host,
                data_converter=data_converter(),
                runtime=api_metrics.runtime,
            )
            with pytest.raises(RPCError):
                await api_client.get_workflow_handle("swoosh-project-does-not-exist").describe()
            await asyncio.sleep(1.5)  # the SDK exporters publish on an interval
            worker_text = await asyncio.to_thread(worker_metrics.exposition)
            api_text = ApiMetrics(sdk_text=api_metrics.sdk_text).exposition().decode()
    finally:
        await env.shutdown()
    assert FailSnapshotOnce.failed and FlakyStore.failed
    return _names(worker_text) | _names(api_text) | PROMETHEUS_OWN


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    return asyncio.run(_exported(tmp_path_factory.mktemp("dash")))


def _dashboard_queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    queries = [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            queries.extend(t["expr"] for t in p.get("targets", []))
            walk(p.get("panels", []))

    walk(dash["panels"])
    return queries


def test_every_dashboard_query_names_only_exported_metrics(exported: set[str]) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 30
    used = {m for q in queries for m in METRIC.findall(q)} | ({"up"} if any("up{" in q for q in queries) else set())
    missing = sorted(used - exported)
    assert not missing, f"queried but never exported: {missing}"


def test_every_alert_names_only_exported_metrics(exported: set[str]) -> None:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    used = {m for r in rules for m in METRIC.findall(r["expr"])}
    assert not sorted(used - exported), f"alerted on but never exported: {sorted(used - exported)}"


def test_the_dashboard_has_the_sdk_panels_and_variables() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert {v["name"] for v in dash["templating"]["list"]} >= {"datasource", "namespace", "task_queue", "instance"}
    text = " ".join(_dashboard_queries())
    for sdk in (
        "temporal_worker_task_slots_available",
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_sticky_cache_size",
        "temporal_workflow_task_execution_failed",
    ):
        assert sdk in text, sdk
