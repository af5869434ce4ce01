"""The benchmark's worker process: SWOOSH's workflow and activities plus the bare-ceiling workflow.

Facts are always green and every BACKBEAT window is open, so the benchmark measures the machinery,
not waiting for windows. Run as `python -m tests.bench.bench_worker ADDRESS TASK_QUEUE SINK_DIR`.
With `SWOOSH_ENCRYPTION_KEYS` set it also serves SWOOSH on `TASK_QUEUE-enc` with payload encryption
(the bare ceiling always stays plaintext: it is bare Temporal).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from swoosh.activities.decisions import DeliveryActivities
from swoosh.activities.guards import GuardActivities
from swoosh.activities.records_jsonl import JsonlSink
from swoosh.guards.facts import BeatFrame, Facts, LicenseFact, McpFact
from swoosh.worker.settings import Settings
from swoosh.workflows.lifecycle import ProjectLifecycle, telemetry
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from tests.bench.bare import BareCeiling, noop


class OpenFacts:
    """Green licence and MCP, and whichever window the guard asks about is open."""

    async def facts(
        self,
        now_ms: int,
        *,
        network_allowed: bool | None = None,
        inputs: Mapping[str, Any] | None = None,
        evidence: Sequence[str] = (),
    ) -> Facts:
        return Facts(
            now_ms=now_ms,
            license=LicenseFact(status="valid", license_id="BENCH", fetched_at_ms=now_ms, verified=True),
            mcp=McpFact(reachable=True, tools={"ucxl.resolve": "1.0.0"}, fetched_at_ms=now_ms),
            beat=None,
        )


class OpenWindowGuards(GuardActivities):
    """The guard activity with a beat frame matching the window the transition needs."""

    @activity.defn(name="swoosh.evaluate_guards")
    async def evaluate(self, request: Any) -> Any:  # type: ignore[override]
        from swoosh.guards.evaluate import evaluate_guards
        from swoosh.workflows.messages import GuardRequest, GuardResponse

        req = GuardRequest.model_validate(request) if not isinstance(request, GuardRequest) else request
        facts = await self.source.facts(req.now_ms)
        if req.context.window_class and req.context.window_id:
            facts = facts.model_copy(update={"beat": BeatFrame(
                window_id=req.context.window_id, phase=req.context.window_class, beat_index=1, tempo_bpm=60,  # type: ignore[arg-type]
                deadline_at_ms=req.now_ms + 60_000, received_at_ms=req.now_ms)})  # fmt: skip
        return GuardResponse(outcomes=evaluate_guards(req.guards, req.state, req.inputs, facts, req.context))


async def main(address: str, task_queue: str, sink_dir: str) -> None:
    # With OTEL_TRACES_EXPORTER set (`make bench` with --tracing), the worker traces as `swoosh worker` does.
    plugins = telemetry.client_plugins("swoosh-worker")
    client = await Client.connect(address, data_converter=pydantic_data_converter, plugins=plugins)
    guards = OpenWindowGuards(OpenFacts())
    deliver = DeliveryActivities(JsonlSink(Path(sink_dir)))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as workers:
        await workers.enter_async_context(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[ProjectLifecycle, BareCeiling],
                activities=[guards.evaluate, deliver.deliver, noop],
                workflow_runner=workflow_runner(),
            )
        )
        encryption = Settings.load().encryption
        if encryption.enabled:
            sealed = await Client.connect(address, data_converter=data_converter(encryption), plugins=plugins)
            await workers.enter_async_context(
                Worker(
                    sealed,
                    task_queue=f"{task_queue}-enc",
                    workflows=[ProjectLifecycle],
                    activities=[guards.evaluate, deliver.deliver],
                    workflow_runner=workflow_runner(),
                )
            )
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
