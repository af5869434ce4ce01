"""Connections to Temporal breaking mid-call: 503 + Retry-After, never `500 internal`.

A relay in front of the session's dev server first passes everything, then breaks every connection
(open ones and new ones) as a server does while it restarts. The SDK retries such calls, then gives
up with `UNKNOWN: transport error` — which the API once answered as a 500.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from temporalio.client import Client, RetryConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from swoosh.api.client._factory import ProposalFactory
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post
from tests.api.tls import Relay

pytestmark = pytest.mark.temporal


@pytest.fixture
def relay(stack: Stack) -> Iterator[Relay]:
    started = stack.bg.run(Relay(stack.target).start())
    try:
        yield started
    finally:
        stack.bg.run(started.stop())


def test_connections_broken_mid_call_are_503_never_500(stack: Stack, start_api: ServerFactory, relay: Relay) -> None:
    async def through_relay() -> Client:
        # The SDK's own retries, shortened so the test does not wait out the default 10 s.
        retry = RetryConfig(initial_interval_millis=50, max_interval_millis=200, max_elapsed_time_millis=1500)
        return await Client.connect(relay.address, data_converter=pydantic_data_converter, retry_config=retry)

    server = start_api(through_relay)
    factory = ProposalFactory(stack.signers, "broken-links")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put("/v1/projects/broken-links").status_code == 201
        body = factory.body("Boot_ConfigOk", head(http, "broken-links"))
        stack.bg.loop.call_soon_threadsafe(relay.reset_all)
        answers = [
            http.get("/v1/projects/broken-links/state"),
            http.get("/state", params={"project_id": "broken-links"}),
            post(http, "broken-links", body),
            http.post("/transition", json={**body, "project_id": "broken-links"}),
            http.get("/v1/projects/broken-links/decisions"),
        ]
    for resp in answers:
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "5" and resp.json()["error"] == "unavailable"
    reasons = " ".join(r.json()["reason"] for r in answers)
    assert "UNKNOWN: transport error" in reasons, reasons  # exactly what the chaos run had answered with a 500
