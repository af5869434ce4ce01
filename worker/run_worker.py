"""`swoosh worker`: a Temporal worker for SWOOSH workflows and activities, with Prometheus metrics.

It refuses to start on a namespace `swoosh setup` has not prepared, logs its start and stop with
its settings (never a secret), and serves `GET /livez` and `GET /readyz` on `worker.health_bind`.
Its metrics port serves the Temporal SDK's metrics and the workflow-side swoosh_* metrics, zero from
the start for every transition and guard; `OTEL_*` variables turn tracing on (`connect()` adds
Temporal's OpenTelemetry plugin to the client, and so to this worker).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from swoosh.activities.decisions import DecisionStore, DeliveryActivities, decision_store, store_problem
from swoosh.activities.facts import FactsService
from swoosh.activities.guards import FactsSource, GuardActivities
from swoosh.activities.receipts import ReceiptSigner, receipt_signer
from swoosh.worker.health import HealthServer
from swoosh.worker.metrics_http import MetricsServer
from swoosh.worker.settings import Settings, WorkerSettings
from swoosh.workflows.lifecycle import WORKFLOWS, telemetry
from swoosh.workflows.lifecycle.connection import connect, resolve
from swoosh.workflows.lifecycle.namespace import namespace_problem, require_setup
from swoosh.workflows.lifecycle.runtime import MetricsRuntime
from swoosh.workflows.lifecycle.sandbox import workflow_runner

__all__ = ["DEFAULT_METRICS_BIND", "RunningWorker", "build_worker", "running_worker", "serve", "start_metrics"]

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


async def start_metrics(runtime: MetricsRuntime, settings: Settings, bind: str | None) -> MetricsServer | None:
    """Zero series for this worker's namespace and task queue, served on `bind` (None: not served)."""
    runtime.zero_workflow_series(resolve(settings.temporal).namespace, settings.temporal.task_queue)
    return await MetricsServer(runtime).start(bind) if bind else None


def build_worker(
    client: Client,
    task_queue: str,
    facts: FactsSource,
    sink: DecisionStore,
    *,
    no_sticky: bool = False,
    tuning: WorkerSettings | None = None,
    signer: ReceiptSigner | None = None,
) -> Worker:
    tuning = tuning or WorkerSettings()
    guard_acts = GuardActivities(facts)
    deliver_acts = DeliveryActivities(sink, signer)
    # The workflow's log lines carry their fields as JSON (worker/logs.py); the SDK's default would
    # also append a text rendering of the workflow's info to every message.
    workflow.logger.workflow_info_on_message = False
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=[guard_acts.evaluate, deliver_acts.deliver],
        workflow_runner=workflow_runner(),
        # 0 disables the sticky cache, so every task is a full replay (used to prove determinism).
        max_cached_workflows=0 if no_sticky else tuning.max_cached_workflows,
        # Without a cache the SDK core evicts the least recently used run after every completed
        # workflow task, and that can be *another* run still waiting on its guard local activity:
        # the activity is cancelled, that task is never answered, times out and is retried, and
        # under load the retry meets the same fate (a project stuck in "Workflow Task in failed
        # state"). One task at a time means the run just completed is the only run with a task.
        max_concurrent_workflow_tasks=NO_STICKY_TASK_SLOTS if no_sticky else tuning.max_concurrent_workflow_tasks,
        max_concurrent_activities=tuning.max_concurrent_activities,
        max_concurrent_local_activities=tuning.max_concurrent_local_activities,
        graceful_shutdown_timeout=timedelta(milliseconds=tuning.graceful_shutdown_ms),
    )


@dataclass
class RunningWorker:
    worker: Worker
    health: HealthServer | None  # None unless worker.health_bind is set


@asynccontextmanager
async def running_worker(
    settings: Settings, client: Client, *, no_sticky: bool = False
) -> AsyncIterator[RunningWorker]:
    """Facts providers + worker, started and stopped together (with the health endpoints when configured)."""
    sink = decision_store(settings.records, Path(settings.data_dir))
    signer = receipt_signer(settings.receipts)
    async with FactsService(settings) as facts:
        worker = build_worker(
            client,
            settings.temporal.task_queue,
            facts,
            sink,
            no_sticky=no_sticky,
            tuning=settings.worker,
            signer=signer,
        )
        task = asyncio.create_task(worker.run())

        def live() -> str | None:
            if not task.done():
                return None
            err = None if task.cancelled() else task.exception()
            return f"the worker stopped ({type(err).__name__ if err else 'finished'})"

        async def temporal() -> str | None:
            return await namespace_problem(client)

        async def store() -> str | None:
            return await store_problem(sink)

        health = None
        if settings.worker.health_bind:
            health = await HealthServer(settings.worker.health_bind, live, [temporal, store]).start()
        try:
            yield RunningWorker(worker, health)
        finally:
            if health is not None:
                await health.stop()
            await worker.shutdown()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sink.aclose()


def start_fields(settings: Settings, metrics_bind: str | None, no_sticky: bool) -> dict[str, object]:
    """The worker's settings as logged at start: capacity and where it connects, never a secret."""
    target = resolve(settings.temporal)
    return {
        "task_queue": settings.temporal.task_queue,
        "temporal": target.describe(),
        "worker": {
            **settings.worker.model_dump(),
            "no_sticky": no_sticky,
            "metrics_bind": metrics_bind or "",
            "records": settings.records.store,
        },
    }


async def serve(settings: Settings, metrics_bind: str | None, no_sticky: bool) -> None:
    fields = start_fields(settings, metrics_bind, no_sticky)
    telemetry.configure_from_env("swoosh-worker")
    metrics = MetricsRuntime("swoosh-worker", settings.instance)
    client = await connect(settings.temporal, encryption=settings.encryption, runtime=metrics.runtime)
    await require_setup(client)
    server = await start_metrics(metrics, settings, metrics_bind)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings, client, no_sticky=no_sticky) as running:
        health = running.health
        log.info(
            "worker started on task queue %s",
            settings.temporal.task_queue,
            extra={"swoosh": {"event": "worker_start", **fields, "health": health.address if health else ""}},
        )
        endpoint = f"metrics http://{metrics_bind}/metrics" if metrics_bind else "no metrics endpoint"
        receipts = settings.receipts.key_file or ("a key from SWOOSH_RECEIPTS_KEY" if settings.receipts.key else None)
        print(
            f"swoosh worker: task queue {settings.temporal.task_queue} on {resolve(settings.temporal).address}; "
            f"{endpoint}; data {settings.data_dir}"
            + (f"; health http://{health.address}/readyz" if health else "")
            + f"; receipts signed with {receipts or 'no key (unsigned)'}",
            flush=True,
        )
        await stop.wait()
        log.info(
            "worker stopping (graceful shutdown up to %d ms)",
            settings.worker.graceful_shutdown_ms,
            extra={"swoosh": {"event": "worker_stopping", "task_queue": settings.temporal.task_queue}},
        )
    log.info("worker stopped", extra={"swoosh": {"event": "worker_stop", "task_queue": settings.temporal.task_queue}})
    if server is not None:
        await server.stop()
    print("swoosh worker: stopped", flush=True)


def main(args: argparse.Namespace) -> int:
    settings = Settings.load(config_file=args.config)
    metrics_bind = settings.worker.metrics_bind if args.metrics_bind is None else args.metrics_bind
    asyncio.run(serve(settings, metrics_bind, args.no_sticky))
    return 0
