"""One trace per HTTP transition: the caller's traceparent, the API, the Update, the guard, the delivery.

A worker and an API with tracing on (an in-memory exporter; the same plugin `connect()` installs)
beside the session's dev server. Spans are read back and checked as a tree.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle import telemetry
from swoosh.workflows.messages import ACTIVITY_DELIVER, ACTIVITY_GUARDS, SIGNAL_PROPOSE
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.environment import lifecycle_worker
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post
from tests.spans import attrs, in_trace, memory_exporter, parent_of, tree, wait_for

TRACE_ID = int(uuid.uuid4().hex, 16)
API_SPAN = "POST /v1/projects/{project_id}/transition"
CALLER_SPAN = int(uuid.uuid4().hex[:16], 16)


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    task_queue: str
    client: Client


@pytest.fixture(scope="module")
def traced(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    """A traced worker on its own task queue of the session's dev server."""
    exporter = memory_exporter()
    task_queue = f"swoosh-traced-{uuid.uuid4().hex[:8]}"
    sink = tmp_path_factory.mktemp("traced") / "decisions"
    stop = asyncio.Event()
    ready: Future[Client] = Future()

    async def run() -> None:
        client = await traced_client(stack)
        async with lifecycle_worker(client, facts=stack.facts, sink_dir=Path(sink), task_queue=task_queue):
            ready.set_result(client)
            await stop.wait()

    task = asyncio.run_coroutine_threadsafe(run(), stack.bg.loop)
    client = ready.result(60)
    try:
        yield Traced(exporter, task_queue, client)
    finally:
        stack.bg.loop.call_soon_threadsafe(stop.set)
        task.result(30)


async def traced_client(stack: Stack) -> Client:
    return await Client.connect(
        stack.target, data_converter=pydantic_data_converter, plugins=telemetry.client_plugins()
    )


def _traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def _named(spans: list[ReadableSpan], name: str) -> bool:
    return any(s.name == name for s in spans)


def _one(spans: list[ReadableSpan], name: str, **match: object) -> ReadableSpan:
    found = [s for s in spans if s.name == name and all(attrs(s).get(k) == v for k, v in match.items())]
    assert len(found) == 1, (name, match, [attrs(s) for s in found])
    return found[0]


def _child(spans: list[ReadableSpan], parent: ReadableSpan, name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name and parent_of(s, spans) is parent]
    assert len(found) == 1, (name, parent.name, tree(spans))
    return found[0]


def _delivered(exporter: InMemorySpanExporter, pid: str, index: int) -> None:
    def done(spans: list[ReadableSpan]) -> bool:
        return any(
            s.name == "swoosh.deliver"
            and attrs(s)["swoosh.project_id"] == pid
            and attrs(s)["swoosh.last_index"] >= index
            for s in spans
        )

    wait_for(exporter, done)


def _raw_post(url: str, body: dict[str, object], traceparent: str) -> tuple[int, dict[str, object]]:
    """POST with the stdlib (not instrumented): the traceparent header arrives exactly as given."""
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"traceparent": traceparent})
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_http_transition_is_one_trace_from_caller_to_delivery(
    stack: Stack, traced: Traced, start_api: ServerFactory
) -> None:
    server = start_api(client=lambda: traced_client(stack), task_queue=traced.task_queue, tracing=True)
    pid = f"tr-{uuid.uuid4().hex[:10]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        assert post(http, pid, factory.body("Boot_ConfigOk", head(http, pid), {})).status_code == 202
        _delivered(traced.exporter, pid, 1)  # so the next record is the first of its delivery batch
        body = factory.body("Boot_Licensed", head(http, pid), {"license_id": "LIC-1"}, window_id="backbeat:W-9")
    status, answer = _raw_post(f"{server.url}/v1/projects/{pid}/transition", body, _traceparent(TRACE_ID, CALLER_SPAN))
    assert status == 202, answer
    index = answer["index"]

    def complete(spans: list[ReadableSpan]) -> bool:
        return any(s.name == f"RunActivity:{ACTIVITY_DELIVER}" for s in in_trace(spans, TRACE_ID))

    spans = in_trace(wait_for(traced.exporter, complete), TRACE_ID)
    api = _one(spans, "POST /v1/projects/{project_id}/transition")
    assert api.parent is not None and api.parent.span_id == CALLER_SPAN
    assert attrs(api)["swoosh.accepted"] is True and attrs(api)["swoosh.index"] == index
    update = _child(spans, api, "StartWorkflowUpdate:transition")
    handler = _child(spans, update, "HandleUpdate:transition")
    transition = _child(spans, handler, "swoosh.transition")
    a = attrs(transition)
    assert a["swoosh.project_id"] == pid and a["swoosh.transition"] == "Boot_Licensed"
    assert a["swoosh.index"] == index and a["swoosh.hlc"] == body["hlc"]
    assert a["swoosh.window_id"] == "backbeat:W-9"
    assert a["swoosh.state_pre_hash"] == answer["state_pre_hash"]
    assert a["swoosh.state_post_hash"] == answer["state_post_hash"]
    assert tuple(a["swoosh.evidence"]) == ()
    guards = [dict(e.attributes or {}) for e in transition.events if e.name == "swoosh.guard"]
    assert [(g["guard"], g["ok"]) for g in guards] == [("license", True)] and guards[0]["reasons"]
    guard_call = _child(spans, transition, f"StartActivity:{ACTIVITY_GUARDS}")
    _child(spans, guard_call, f"RunActivity:{ACTIVITY_GUARDS}")
    delivery = _child(spans, transition, "swoosh.deliver")
    assert attrs(delivery)["swoosh.first_index"] == index
    deliver_call = _child(spans, delivery, f"StartActivity:{ACTIVITY_DELIVER}")
    _child(spans, deliver_call, f"RunActivity:{ACTIVITY_DELIVER}")
    assert len([s for s in spans if s.name == "swoosh.transition"]) == 1
    print("\n" + tree(spans))


def test_rejected_proposal_span_carries_code_and_failing_guard(
    stack: Stack, traced: Traced, start_api: ServerFactory
) -> None:
    server = start_api(client=lambda: traced_client(stack), task_queue=traced.task_queue, tracing=True)
    pid = f"tr-{uuid.uuid4().hex[:10]}"
    factory = ProposalFactory(stack.signers, pid)
    trace_id = int(uuid.uuid4().hex, 16)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        assert post(http, pid, factory.body("Boot_ConfigOk", head(http, pid), {})).status_code == 202
        stack.facts.license_status = "denied"
        body = factory.body("Boot_Licensed", head(http, pid), {"license_id": "LIC-1"})
    url = f"{server.url}/v1/projects/{pid}/transition"
    status, answer = _raw_post(url, body, _traceparent(trace_id, CALLER_SPAN))
    assert status == 400 and answer["error"] == "guard_failed"
    stale = factory.body("Boot_Licensed", "sha256-" + "0" * 64, {"license_id": "LIC-1"})
    stale_trace = int(uuid.uuid4().hex, 16)
    assert _raw_post(url, stale, _traceparent(stale_trace, CALLER_SPAN))[0] == 400

    def both(spans: list[ReadableSpan]) -> bool:
        mine = in_trace(spans, trace_id)
        return _named(mine, "swoosh.transition") and _named(mine, "POST /v1/projects/{project_id}/transition")

    spans = in_trace(wait_for(traced.exporter, both), trace_id)
    span = _one(spans, "swoosh.transition")
    a = attrs(span)
    assert a["swoosh.accepted"] is False and a["swoosh.error"] == "guard_failed"
    assert a["swoosh.failing_guard"] == "license" and a["swoosh.transition"] == "Boot_Licensed"
    assert [dict(e.attributes or {})["ok"] for e in span.events if e.name == "swoosh.guard"] == [False]
    api = _one(spans, "POST /v1/projects/{project_id}/transition")
    assert attrs(api)["swoosh.error"] == "guard_failed" and attrs(api)["swoosh.failing_guard"] == "license"
    # Rejected in the Update validator (nothing written): the API's span says why.
    api_stale = _one(
        in_trace(wait_for(traced.exporter, lambda s: _named(in_trace(s, stale_trace), API_SPAN)), stale_trace),
        "POST /v1/projects/{project_id}/transition",
    )
    assert attrs(api_stale)["swoosh.error"] == "stale_state_hash"


def test_signal_path_and_system_transitions_are_traced_from_the_worker(
    stack: Stack, traced: Traced, start_api: ServerFactory
) -> None:
    server = start_api(client=lambda: traced_client(stack), task_queue=traced.task_queue, tracing=True)
    pid = f"tr-{uuid.uuid4().hex[:10]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        leaky = factory.body("Boot_ConfigOk", head(http, pid), {}, evidence=["token = abcdefghijklmnop1234"])
    tracer = trace.get_tracer("tests")

    async def signal() -> int:
        with tracer.start_as_current_span("caller") as span:
            handle = traced.client.get_workflow_handle(workflow_id(pid))
            await handle.signal(SIGNAL_PROPOSE, ProposalRequest(body=leaky, project_id=pid))
            return span.get_span_context().trace_id

    trace_id = stack.bg.run(signal())

    def done(spans: list[ReadableSpan]) -> bool:
        return sum(1 for s in in_trace(spans, trace_id) if s.name == "swoosh.transition") == 2

    spans = in_trace(wait_for(traced.exporter, done), trace_id)
    rejected = _one(spans, "swoosh.transition", **{"swoosh.accepted": False})
    assert attrs(rejected)["swoosh.failing_guard"] == "policy"
    handler = parent_of(rejected, spans)
    assert handler is not None and handler.name == f"HandleSignal:{SIGNAL_PROPOSE}"
    quarantine = _child(spans, rejected, "swoosh.transition")
    a = attrs(quarantine)
    assert a["swoosh.transition"] == "Policy_Quarantine" and a["swoosh.signer"] == "swoosh:system"
    assert a["swoosh.index"] == 1
    assert "abcdefghijklmnop1234" not in repr(
        [attrs(s) for s in spans] + [e.attributes for s in spans for e in s.events]
    )
