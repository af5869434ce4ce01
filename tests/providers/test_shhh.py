"""SHHH: custom rules in the guard, and the external policy endpoint failing closed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from swoosh.activities.shhh import EmbeddedPolicyProvider, HttpPolicyProvider
from swoosh.chaos.simulator import SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts, PolicyRuleSpec
from swoosh.guards.policy import policy_guard

from .conftest import FakeClock

RULE = PolicyRuleSpec(id="ticket", pattern=r"\bJIRA-[0-9]+\b", severity="low")


def ctx(evidence: tuple[str, ...] = ()) -> GuardContext:
    return GuardContext(project_id="p", transition="Ingestion_SchemaOk", signer="s", evidence=evidence)


@pytest_asyncio.fixture
async def client(sim: SimHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=0.3, trust_env=False) as c:
        yield c


def http(client: httpx.AsyncClient, clock: FakeClock | None = None) -> HttpPolicyProvider:
    return HttpPolicyProvider(client, (RULE,), True, clock or FakeClock(), reuse_ms=60_000)


async def test_embedded_policy_custom_rule_breaches_in_the_guard() -> None:
    fact = await EmbeddedPolicyProvider((RULE,), True, FakeClock()).policy({}, [])
    facts = Facts(now_ms=0, policy=fact)
    out = policy_guard({}, {"note": "see JIRA-42"}, facts, ctx())
    assert not out.ok and out.reasons == ("breach: ticket (low) at inputs.note",)
    assert policy_guard({}, {"note": "fine"}, facts, ctx(("ucxl://x",))).ok


async def test_http_policy_clean_inputs_have_no_breach(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await http(client).policy({"note": "hello"}, ["ucxl://a"])
    assert fact.external_breaches == () and fact.rules == (RULE,)
    assert policy_guard({}, {"note": "hello"}, Facts(now_ms=0, policy=fact), ctx(("ucxl://a",))).ok


async def test_http_policy_external_breach_reaches_the_guard(sim: SimHandle, client: httpx.AsyncClient) -> None:
    fact = await http(client).policy({"note": "this is Forbidden"}, [])
    assert fact.external_breaches == ("external: sim-forbidden (high) at inputs.note",)
    out = policy_guard({}, {"note": "this is Forbidden"}, Facts(now_ms=0, policy=fact), ctx())
    assert not out.ok and "breach: external: sim-forbidden (high) at inputs.note" in out.reasons


async def test_http_policy_external_breach_text_is_redacted(sim: SimHandle, client: httpx.AsyncClient) -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    fact = await http(client).policy({key: "forbidden"}, [])
    assert fact.external_breaches and all(key not in b for b in fact.external_breaches)
    assert "[REDACTED]" in fact.external_breaches[0]


@pytest.mark.parametrize(
    ("faults", "breach"),
    [
        ({"error_status": 500}, "policy endpoint unreachable: HTTP 500"),
        ({"latency_ms": 2000}, "policy endpoint unreachable: timed out"),
        ({"deny": True}, "external: denied by the policy service"),
    ],
)
async def test_http_policy_failures_fail_closed(
    sim: SimHandle, client: httpx.AsyncClient, faults: dict[str, object], breach: str
) -> None:
    await sim.set_faults("policy", **faults)
    fact = await http(client).policy({"note": "hello"}, [])
    assert fact.external_breaches == (breach,)
    assert not policy_guard({}, {"note": "hello"}, Facts(now_ms=0, policy=fact), ctx()).ok


async def test_http_policy_verdict_reused_for_same_inputs(sim: SimHandle, client: httpx.AsyncClient) -> None:
    clock = FakeClock()
    provider = http(client, clock)
    for _ in range(3):
        await provider.policy({"note": "hello"}, ["e"])
    assert sim.requests("policy") == 1
    await provider.policy({"note": "other"}, ["e"])
    clock.advance(60_001)
    await provider.policy({"note": "hello"}, ["e"])
    assert sim.requests("policy") == 3


async def test_http_policy_failures_are_not_remembered(sim: SimHandle, client: httpx.AsyncClient) -> None:
    await sim.set_faults("policy", flap_every=1)
    provider = http(client)
    first = await provider.policy({"n": 1}, [])  # request 0: served (and remembered)
    assert first.external_breaches == ()
    flaky = await provider.policy({"n": 2}, [])  # request 1: fails
    assert flaky.external_breaches == ("policy endpoint unreachable: HTTP 503",)
    again = await provider.policy({"n": 2}, [])  # request 2: asked again, served
    assert again.external_breaches == ()
