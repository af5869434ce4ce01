"""Closed projects: TERMINATED completes the workflow, which still answers, and is never started again."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from swoosh.api.client._factory import ProposalFactory
from swoosh.worker.logs import JsonFormatter
from swoosh.workflows.ids import workflow_id
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post, step

pytestmark = pytest.mark.temporal


def _status(stack: Stack, project_id: str) -> tuple[WorkflowExecutionStatus | None, str]:
    async def describe() -> tuple[WorkflowExecutionStatus | None, str]:
        client = await stack.connect()
        desc = await client.get_workflow_handle(workflow_id(project_id)).describe()
        return desc.status, desc.run_id

    return stack.bg.run(describe())


def _wait_closed(stack: Stack, project_id: str) -> tuple[WorkflowExecutionStatus | None, str]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, run_id = _status(stack, project_id)
        if status != WorkflowExecutionStatus.RUNNING:
            return status, run_id
        time.sleep(0.2)
    raise AssertionError(f"{project_id} still running")


def _terminated(http: httpx.Client, factory: ProposalFactory) -> dict[str, object]:
    step(http, factory, "Boot_ConfigOk")
    body = factory.body("Boot_LicenseFailed", head(http, factory.project_id), {"reason": "licence refused"})
    resp = post(http, factory.project_id, body)
    assert resp.status_code == 202, resp.text
    return body


def test_terminated_project_completes_and_still_answers(
    stack: Stack, http: httpx.Client, factory: ProposalFactory
) -> None:
    pid = factory.project_id
    last = _terminated(http, factory)
    status, _ = _wait_closed(stack, pid)
    assert status == WorkflowExecutionStatus.COMPLETED  # the namespace's retention now applies

    state = http.get(f"/v1/projects/{pid}/state")
    assert state.status_code == 200 and state.json()["phase"]["top"] == "TERMINATED" and state.json()["index"] == 2
    records = http.get(f"/v1/projects/{pid}/decisions").json()
    assert [r["index"] for r in records["records"]] == [1, 2] and records["head_index"] == 2
    assert http.get(f"/v1/projects/{pid}/health").status_code == 200

    # The contract's answers still hold on the closed run: a resend is a duplicate, anything new `terminated`.
    again = post(http, pid, last)
    assert again.status_code == 202 and again.json()["duplicate"] is True and again.json()["index"] == 2
    new = post(http, pid, factory.body("Control_Pause", state.json()["hash"], {"reason": "too late"}))
    assert new.status_code == 400, new.text
    assert new.json()["error"] == "terminated" and new.json()["head_hash"] == state.json()["hash"]

    # Never started again from genesis: 409 with the reason, the same run stays the project's.
    put = http.put(f"/v1/projects/{pid}")
    assert put.status_code == 409 and put.json()["error"] == "closed", put.text
    assert "is closed" in put.json()["reason"] and "completed" in put.json()["reason"]
    assert http.get(f"/v1/projects/{pid}/state").json()["hash"] == state.json()["hash"]


def test_project_closed_by_an_operator_is_409_for_transitions_and_creation(
    stack: Stack, http: httpx.Client, factory: ProposalFactory
) -> None:
    pid = factory.project_id
    step(http, factory, "Boot_ConfigOk")
    h = head(http, pid)

    async def terminate() -> None:
        client: Client = await stack.connect()
        await client.get_workflow_handle(workflow_id(pid)).terminate("operator closed it")

    stack.bg.run(terminate())
    put = http.put(f"/v1/projects/{pid}")
    assert put.status_code == 409 and "terminated" in put.json()["reason"], put.text
    resp = post(http, pid, factory.body("Boot_Licensed", h, {"license_id": "LIC-1"}))
    assert resp.status_code == 409 and resp.json()["error"] == "closed", resp.text
    assert http.get(f"/v1/projects/{pid}/state").json()["hash"] == h  # still readable


@pytest.fixture
def api_log() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("swoosh.api")
    logger.addHandler(handler)
    try:
        yield buf
    finally:
        logger.removeHandler(handler)


def test_default_project_bootstrap_never_recreates_a_closed_project(
    stack: Stack, http: httpx.Client, start_api: ServerFactory, api_log: io.StringIO
) -> None:
    factory = ProposalFactory(stack.signers, f"closed-default-{uuid.uuid4().hex[:8]}")
    assert http.put(f"/v1/projects/{factory.project_id}").status_code == 201
    _terminated(http, factory)
    closed = _wait_closed(stack, factory.project_id)

    server = start_api(default_project=factory.project_id, create_default_project=True)
    deadline = time.monotonic() + 20
    while '"default_project_closed"' not in api_log.getvalue() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(json.loads(x) for x in api_log.getvalue().splitlines() if '"default_project_closed"' in x)
    assert line["level"] == "error" and "is closed" in line["msg"] and "SWOOSH_DEFAULT_PROJECT" in line["msg"]
    assert _status(stack, factory.project_id) == closed  # the same closed run: nothing started from genesis
    with httpx.Client(base_url=server.url, timeout=30) as legacy:
        state = legacy.get("/state")  # legacy callers still read the default project
        assert state.status_code == 200 and state.json()["phase"]["top"] == "TERMINATED"
