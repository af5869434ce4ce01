"""The Python client, sync and async, against the real API; retries against a plain-function transport."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest

from swoosh.api.client import AsyncSwooshClient, RetryPolicy, SwooshClient, errors
from swoosh.api.client._clock import HLCClock
from swoosh.workflows.answers import Accepted
from swoosh.workflows.crypto import private_key_to_text
from swoosh.workflows.hlc import HLC
from tests.api.conftest import ApiServer, Stack


def _key_file(stack: Stack, name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{name}.key"
    path.write_text(private_key_to_text(stack.signers.keys[name]) + "\n")
    return path


def test_client_sync_propose_reads_and_typed_errors(stack: Stack, api: ApiServer, tmp_path: Path) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with SwooshClient(api.url, pid, key=_key_file(stack, "operator", tmp_path)) as c:
        with pytest.raises(errors.NotFound):
            c.state()
        assert c.create_project().created is True
        assert c.create_project().created is False
        answer = c.propose("Boot_ConfigOk")
        assert isinstance(answer, Accepted) and answer.index == 1 and not answer.duplicate
        assert answer.idem_key.startswith("client:") and answer.idem_key.split(":")[2] == "Boot_ConfigOk"
        assert c.head == answer.state_post_hash
        assert c.clock.last >= HLC.parse(answer.hlc)
        again = c.propose("Boot_ConfigOk", idem_key=answer.idem_key)
        assert again.duplicate and again.index == 1
        with pytest.raises(errors.InvalidTransition) as invalid:
            c.propose("Boot_ConfigOk")
        assert isinstance(invalid.value, errors.Rejected) and isinstance(invalid.value, errors.SwooshApiError)
        assert invalid.value.head_hash == answer.state_post_hash
        with pytest.raises(errors.UnknownTransition):
            c.propose("Boot_Rebooted")
        stack.facts.license_status = "denied"
        with pytest.raises(errors.GuardFailed) as failed:
            c.propose("Boot_Licensed", {"license_id": "LIC-1"})
        assert failed.value.failing_guard == "license" and failed.value.guards[0].ok is False
        state = c.state(["Council", "meta"])
        assert set(state.projection) == {"council", "meta"} and state.index == 1
        with pytest.raises(errors.SchemaError):
            c.state("nonsense")
        assert c.health().status == "ok"
        page = c.decisions()
        assert [r["index"] for r in page.records] == [1]
        c.propose("Policy_Quarantine", {"reason": "look"})
        with pytest.raises(errors.Quarantined):
            c.propose("Control_Pause", {"reason": "x"})
        c.propose("Policy_ConfirmedBlock", {"reason": "done"})
        with pytest.raises(errors.Terminated):
            c.propose("Control_Pause", {"reason": "x"})


def test_client_sync_unauthorized_signer_and_retry_stale(stack: Stack, api: ApiServer, tmp_path: Path) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with SwooshClient(api.url, pid, key=_key_file(stack, "ingestion", tmp_path)) as c:
        c.create_project()
        with pytest.raises(errors.UnauthorizedSigner):
            c.propose("Boot_ConfigOk")
    with (
        SwooshClient(api.url, pid, key=_key_file(stack, "operator", tmp_path)) as a,
        SwooshClient(api.url, pid, key=_key_file(stack, "operator", tmp_path)) as b,
    ):
        a.state()
        b.state()
        a.propose("Boot_ConfigOk")  # b's head is now stale
        with pytest.raises(errors.StaleStateHash) as stale:
            b.propose("Control_Pause", {"reason": "x"})
        assert stale.value.code == "stale_state_hash"
        b._core.head = "sha256-" + "1" * 64  # still a stale head: the client re-reads and resends
        answer = b.propose("Control_Pause", {"reason": "x"}, retry_stale=True)
        assert answer.transition == "Control_Pause" and answer.index == 2


async def test_client_async_propose_and_typed_errors(stack: Stack, api: ApiServer, tmp_path: Path) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    async with AsyncSwooshClient(api.url, pid, key=stack.signers.keys["operator"]) as c:
        assert (await c.create_project()).created
        answer = await c.propose("Boot_ConfigOk", window_id="backbeat:W-2", evidence=["ucxl://x/y"])
        assert answer.decision_record is not None and answer.decision_record["window_id"] == "backbeat:W-2"
        with pytest.raises(errors.InvalidTransition):
            await c.propose("Boot_ConfigOk")
        c._core.head = "sha256-" + "2" * 64
        with pytest.raises(errors.StaleStateHash):
            await c.propose("Control_Pause", {"reason": "x"})
        c._core.head = "sha256-" + "2" * 64
        paused = await c.propose("Control_Pause", {"reason": "x"}, retry_stale=True)
        assert paused.index == 2
        assert (await c.state()).phase["top"] == "PAUSED"
        assert (await c.decisions(after_index=1)).records[0]["transition"] == "Control_Pause"
        assert (await c.health()).index == 2


def test_client_hlc_regression_and_too_far_ahead_are_typed(stack: Stack, api: ApiServer) -> None:
    pid = f"t-{uuid.uuid4().hex[:12]}"
    with SwooshClient(api.url, pid, key=stack.signers.keys["operator"]) as c:
        c.create_project()
        first = c.propose("Boot_ConfigOk")
    past = HLCClock(physical_ms=lambda: HLC.parse("2020-01-01T00:00:00.000+00:00#0").wall_ms)
    with SwooshClient(api.url, pid, key=stack.signers.keys["operator"], clock=past) as old:
        old._core.head = first.state_post_hash  # no read: the clock has not observed hlc_last
        with pytest.raises(errors.HlcRegression):
            old.propose("Control_Pause", {"reason": "x"})
    with SwooshClient(api.url, pid, key=stack.signers.keys["operator"]) as ahead:
        ahead.clock.observe(HLC(ahead.clock.now().wall_ms + 3_600_000, 0))
        with pytest.raises(errors.HlcTooFarAhead):
            ahead.propose("Control_Pause", {"reason": "x"})


def test_client_bad_token_is_unauthorized(stack: Stack, start_api: object) -> None:
    server = start_api(tokens=("t1",))  # type: ignore[operator]
    with SwooshClient(server.url, "whatever", key=stack.signers.keys["operator"], token="t2") as c:
        with pytest.raises(errors.Unauthorized):
            c.state()
    with SwooshClient(server.url, f"t-{uuid.uuid4().hex[:12]}", token="t1") as c:
        assert c.create_project().created


def test_client_unreachable_api_is_unavailable() -> None:
    with SwooshClient("http://127.0.0.1:9", "p", retry=RetryPolicy(attempts=1, backoff_s=0.01)) as c:
        with pytest.raises(errors.Unavailable):
            c.state()


class Scripted:
    """A plain-function transport: answers a scripted sequence of statuses, records what it got."""

    def __init__(self, statuses: list[int], retry_after: str = "0") -> None:
        self.statuses = statuses
        self.retry_after = retry_after
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        status = self.statuses.pop(0)
        if status == 202:
            body = json.loads(request.content)
            return httpx.Response(
                202,
                json={
                    "accepted": True,
                    "duplicate": False,
                    "project_id": "p",
                    "transition": body["transition"],
                    "index": 1,
                    "state_pre_hash": body["current_state_hash"],
                    "state_post_hash": "sha256-" + "f" * 64,
                    "hlc": body["hlc"],
                    "idem_key": body["idem_key"],
                    "decision_record": None,
                    "dr_hash": "sha256-" + "e" * 64,
                    "guards": [],
                },
            )
        if status == 500:
            return httpx.Response(500, json={"error": "internal", "reason": "boom"})
        return httpx.Response(status, json={"error": "x", "reason": "busy"}, headers={"Retry-After": self.retry_after})


def test_client_retries_429_and_503_with_the_same_body_and_reports_retries(stack: Stack) -> None:
    script = Scripted([429, 503, 202])
    with SwooshClient(
        "http://api", "p", key=stack.signers.keys["operator"], transport=httpx.MockTransport(script)
    ) as c:
        c._core.head = "sha256-" + "0" * 64
        answer = c.propose("Boot_ConfigOk")
    assert answer.index == 1
    bodies = [r.content for r in script.seen]
    assert bodies[0] == bodies[1] == bodies[2], "a retry resends the same signed body (same idem_key)"
    assert [r.headers.get("X-Swoosh-Retry") for r in script.seen] == [None, "1", "2"]


def test_client_retry_budget_is_bounded(stack: Stack) -> None:
    script = Scripted([503] * 10, retry_after="0")
    retry = RetryPolicy(attempts=3, backoff_s=0.0)
    with SwooshClient(
        "http://api", "p", key=stack.signers.keys["operator"], retry=retry, transport=httpx.MockTransport(script)
    ) as c:
        c._core.head = "sha256-" + "0" * 64
        with pytest.raises(errors.Unavailable) as err:
            c.propose("Boot_ConfigOk")
    assert len(script.seen) == 4 and err.value.retry_after == 0
    script = Scripted([429], retry_after="3600")
    retry = RetryPolicy(attempts=3, max_wait_s=5, budget_s=1)
    with SwooshClient(
        "http://api", "p", key=stack.signers.keys["operator"], retry=retry, transport=httpx.MockTransport(script)
    ) as c:
        c._core.head = "sha256-" + "0" * 64
        with pytest.raises(errors.Overloaded):
            c.propose("Boot_ConfigOk")  # the advised wait does not fit the budget: raised at once
    assert len(script.seen) == 1


async def test_client_async_retries_then_succeeds(stack: Stack) -> None:
    script = Scripted([503, 202])
    transport = httpx.MockTransport(script)
    async with AsyncSwooshClient("http://api", "p", key=stack.signers.keys["operator"], transport=transport) as c:
        c._core.head = "sha256-" + "0" * 64
        assert (await c.propose("Boot_ConfigOk")).index == 1
    script = Scripted([500])
    async with AsyncSwooshClient(
        "http://api", "p", key=stack.signers.keys["operator"], transport=httpx.MockTransport(script)
    ) as c:
        c._core.head = "sha256-" + "0" * 64
        with pytest.raises(errors.UnexpectedResponse):
            await c.propose("Boot_ConfigOk")
