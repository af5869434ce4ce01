"""MCP: the embedded tool list and the registry probe over HTTP, failures as unreachable facts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from swoosh.activities.mcp import EmbeddedMcpProvider, HttpMcpProvider, parse_tools
from swoosh.chaos.simulator import DEFAULT_TOOLS, SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.mcp import mcp_guard

from .conftest import FakeClock

CTX = GuardContext(project_id="p", transition="Council_McpGreen", signer="s")


@pytest_asyncio.fixture
async def client(sim: SimHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=0.3, trust_env=False) as c:
        yield c


async def test_embedded_mcp_serves_the_static_list() -> None:
    clock = FakeClock()
    fact = await EmbeddedMcpProvider({"git": "2.45.0"}, clock).mcp()
    assert (fact.reachable, fact.tools, fact.fetched_at_ms) == (True, {"git": "2.45.0"}, clock())
    assert mcp_guard({}, {"tool_pins": {"git": "2.45.0"}}, Facts(now_ms=clock(), mcp=fact), CTX).ok


async def test_http_mcp_reads_the_registry(sim: SimHandle, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    fact = await HttpMcpProvider(client, (), clock).mcp()
    assert (fact.reachable, fact.tools, fact.fetched_at_ms) == (True, DEFAULT_TOOLS, clock())
    facts = Facts(now_ms=clock(), mcp=fact)
    assert mcp_guard({}, {"tool_pins": dict(DEFAULT_TOOLS)}, facts, CTX).ok
    assert not mcp_guard({}, {"tool_pins": {"ucxl.resolve": "0.9.0"}}, facts, CTX).ok


async def test_http_mcp_probes_pinned_tools_and_names_missing_ones(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await HttpMcpProvider(client, ("ucxl.resolve", "ghost"), FakeClock()).mcp()
    assert fact.reachable and fact.tools == {"ucxl.resolve": "1.0.0"}
    assert fact.detail == "registry does not serve: ghost"


async def test_http_mcp_sees_version_changes(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_tools({"ucxl.resolve": "1.1.0"})
    fact = await HttpMcpProvider(client, (), FakeClock()).mcp()
    assert fact.tools == {"ucxl.resolve": "1.1.0"}


@pytest.mark.parametrize(
    ("faults", "detail"),
    [
        ({"error_status": 500}, "MCP registry answered HTTP 500"),
        ({"deny": True}, "MCP registry denied access (HTTP 403)"),
        ({"latency_ms": 2000}, "MCP registry timed out"),
    ],
)
async def test_http_mcp_failures_are_unreachable(
    sim: SimHandle, client: httpx.AsyncClient, faults: dict[str, object], detail: str
) -> None:
    await sim.set_faults("mcp", **faults)
    clock = FakeClock()
    fact = await HttpMcpProvider(client, (), clock).mcp()
    assert (fact.reachable, fact.tools, fact.detail) == (False, {}, detail)
    assert not mcp_guard({}, {"tool_pins": dict(DEFAULT_TOOLS)}, Facts(now_ms=clock(), mcp=fact), CTX).ok


async def test_http_mcp_flapping_alternates(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("mcp", flap_every=1, error_status=502)
    provider = HttpMcpProvider(client, (), FakeClock())
    assert [(await provider.mcp()).reachable for _ in range(4)] == [True, False, True, False]


async def test_http_mcp_clock_skew_does_not_age_facts(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("mcp", skew_ms=-3_600_000)
    clock = FakeClock()
    fact = await HttpMcpProvider(client, (), clock).mcp()
    assert fact.reachable and fact.fetched_at_ms == clock()  # ages are measured on the local clock only


@pytest.mark.parametrize(
    "payload",
    [{"tools": {"a": "1"}}, {"tools": [{"name": "a", "version": "1"}]}],
)
def test_parse_tools_accepts_both_shapes(payload: object) -> None:
    assert parse_tools(payload) == {"a": "1"}


@pytest.mark.parametrize("payload", [[], {"tools": "a"}, {"tools": [{"name": "a"}]}, {"tools": {"a": 1}}])
def test_parse_tools_rejects_malformed(payload: object) -> None:
    with pytest.raises(ValueError):
        parse_tools(payload)
