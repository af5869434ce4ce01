"""`swoosh worker`: a Temporal worker for SWOOSH workflows and activities, with Prometheus metrics."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Worker

from swoosh.activities.decisions import DecisionStore, DeliveryActivities, decision_store
from swoosh.activities.facts import FactsService
from swoosh.activities.guards import FactsSource, GuardActivities
from swoosh.worker.settings import Settings
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.connection import connect
from swoosh.workflows.lifecycle.sandbox import workflow_runner

log = logging.getLogger("swoosh.worker")
DEFAULT_METRICS_BIND = "127.0.0.1:9464"
NO_STICKY_TASK_SLOTS = 1  # workflow tasks in flight on a worker without sticky cache (see build_worker)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-sticky", action="store_true", help="no sticky cache: every workflow task replays history")
    parser.add_argument(
        "--metrics-bind",
        default=None,
        help=f"Prometheus endpoint for SDK + swoosh_* metrics (default worker.metrics_bind, {DEFAULT_METRICS_BIND})",
    )
    parser.add_argument("--config", default=None, help="TOML settings file (else $SWOOSH_CONFIG)")


_runtimes: dict[str, Runtime] = {}


def runtime_with_metrics(bind: str | None) -> Runtime:
    """A Temporal runtime exporting SDK metrics (and the workflow's swoosh_* metrics) for Prometheus."""
    if not bind:
        return Runtime.default()
    if bind not in _runtimes:
        _runtimes[bind] = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    return _runtimes[bind]


def build_worker(
    client: Client, task_queue: str, facts: FactsSource, sink: DecisionStore, *, no_sticky: bool = False
) -> Worker:
    guard_acts = GuardActivities(facts)
    deliver_acts = DeliveryActivities(sink)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ProjectLifecycle],
        activities=[guard_acts.evaluate, deliver_acts.deliver],
        workflow_runner=workflow_runner(),
        # 0 disables the sticky cache, so every task is a full replay (used to prove determinism).
        max_cached_workflows=0 if no_sticky else 1000,
        # Without a cache the SDK core evicts the least recently used run after every completed
        # workflow task, and that can be *another* run still waiting on its guard local activity:
        # the activity is cancelled, that task is never answered, times out and is retried, and
        # under load the retry meets the same fate (a project stuck in "Workflow Task in failed
        # state"). One task at a time means the run just completed is the only run with a task.
        max_concurrent_workflow_tasks=NO_STICKY_TASK_SLOTS if no_sticky else None,
        graceful_shutdown_timeout=__import__("datetime").timedelta(seconds=10),
    )


@asynccontextmanager
async def running_worker(settings: Settings, client: Client, *, no_sticky: bool = False) -> AsyncIterator[Worker]:
    """Facts providers + worker, started and stopped together."""
    store = decision_store(settings.records, Path(settings.data_dir))
    async with FactsService(settings) as facts:
        worker = build_worker(client, settings.temporal.task_queue, facts, store, no_sticky=no_sticky)
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            await worker.shutdown()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await store.aclose()


async def serve(settings: Settings, metrics_bind: str | None, no_sticky: bool) -> None:
    client = await connect(settings.temporal, runtime=runtime_with_metrics(metrics_bind))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings, client, no_sticky=no_sticky):
        log.info("worker started on task queue %s (metrics %s)", settings.temporal.task_queue, metrics_bind)
        metrics = f"metrics http://{metrics_bind}/metrics" if metrics_bind else "no metrics endpoint"
        print(
            f"swoosh worker: task queue {settings.temporal.task_queue} on {settings.temporal.address}; {metrics}; "
            f"data {settings.data_dir}",
            flush=True,
        )
        await stop.wait()
    print("swoosh worker: stopped", flush=True)


def main(args: argparse.Namespace) -> int:
    settings = Settings.load(config_file=args.config)
    metrics_bind = settings.worker.metrics_bind if args.metrics_bind is None else args.metrics_bind
    asyncio.run(serve(settings, metrics_bind, args.no_sticky))
    return 0
