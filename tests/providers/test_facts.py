"""FactsService and FactCache: single-flight, jitter, stale grace, fact ageing, the licence gate, embedded defaults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from swoosh.activities.backbeat import frame_payload
from swoosh.activities.facts import BLOCKED, FactCache, FactsService, network_allowed
from swoosh.activities.kaching import create_dev_license
from swoosh.chaos.simulator import SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.evaluate import evaluate_guards
from swoosh.worker.settings import Settings

from .conftest import FakeClock, http_settings


@asynccontextmanager
async def service(settings: Settings, **kw: Any) -> AsyncIterator[FactsService]:
    """A FactsService without its background refresher (tests drive refreshes), always closed."""
    svc = FactsService(settings, **kw)
    try:
        yield svc
    finally:
        await svc.aclose()


def cache(fetch: Any, clock: FakeClock, seed: int = 0) -> FactCache[int]:
    return FactCache(
        "t",
        fetch,
        good=lambda v: v >= 0,
        fetched_at=lambda v: clock(),
        refresh_ms=1000,
        jitter_ms=100,
        retry_ms=100,
        stale_grace_ms=0,
        clock=clock,
        rng=random.Random(seed),
    )


async def test_many_concurrent_callers_cause_one_upstream_fetch(sim: SimHandle) -> None:
    await sim.set_faults("license", latency_ms=100)
    async with service(http_settings(sim)) as svc:
        clock = FakeClock()
        results = await asyncio.gather(*(svc.facts(clock(), network_allowed=True) for _ in range(50)))
    assert all(f.license is not None and f.license.status == "valid" for f in results)
    assert {k: sim.requests(k) for k in ("license", "mcp", "backbeat")} == {"license": 1, "mcp": 1, "backbeat": 1}


async def test_concurrent_forced_refreshes_share_one_fetch(sim: SimHandle) -> None:
    await sim.set_faults("mcp", latency_ms=100)
    async with service(http_settings(sim)) as svc:
        await asyncio.gather(*(svc.refresh_all(network_allowed=True) for _ in range(20)))
    assert (sim.requests("license"), sim.requests("mcp")) == (1, 1)


async def test_cached_fact_is_served_until_its_jittered_refresh_time(sim: SimHandle) -> None:
    clock = FakeClock()
    async with service(http_settings(sim, mcp={"refresh_ms": 10_000, "jitter_ms": 1000}), clock=clock) as svc:
        await svc.facts(clock(), network_allowed=True)
        due = svc.mcp_cache.next_refresh_at_ms
        assert due is not None and clock() + 9000 <= due <= clock() + 10_000
        clock.now_ms = due - 1
        await svc.facts(clock(), network_allowed=True)
        assert sim.requests("mcp") == 1
        clock.now_ms = due
        await svc.facts(clock(), network_allowed=True)
        assert sim.requests("mcp") == 2


async def test_jittered_refresh_times_differ_across_seeds(tmp_path: Path) -> None:
    clock = FakeClock()
    create_dev_license(tmp_path, now_ms=clock())
    settings = Settings.load({"SWOOSH_DATA_DIR": str(tmp_path)})
    dues = []
    for seed in (1, 2, 3, 4, 5, 1):
        async with service(settings, clock=clock, seed=seed) as svc:
            await svc.refresh_all()
            dues.append(svc.license_cache.next_refresh_at_ms)
    assert dues[0] == dues[-1]  # same seed, same schedule
    assert len(set(dues[:5])) > 1  # different seeds spread the refreshes
    assert all(clock() + 55_000 <= d <= clock() + 60_000 for d in dues if d is not None)


async def test_stale_grace_serves_last_good_fact_through_an_outage(sim: SimHandle) -> None:
    clock = FakeClock()
    mcp = {"refresh_ms": 10_000, "jitter_ms": 0, "retry_ms": 1000, "stale_grace_ms": 30_000}
    async with service(http_settings(sim, mcp=mcp), clock=clock) as svc:
        good = (await svc.facts(clock(), network_allowed=True)).mcp
        assert good is not None and good.reachable
        await sim.set_faults("mcp", error_status=500)
        clock.advance(20_000)
        during = (await svc.facts(clock(), network_allowed=True)).mcp
        assert during == good  # the last good fact, with its original age
        assert svc.mcp_cache.last_result is not None and not svc.mcp_cache.last_result.reachable
        clock.advance(11_000)
        after = (await svc.facts(clock(), network_allowed=True)).mcp
        assert after is not None and not after.reachable and after.detail == "MCP registry answered HTTP 500"
    assert sim.requests("mcp") == 3


async def test_licence_without_grace_reports_throttling_at_once(sim: SimHandle) -> None:
    clock = FakeClock()
    async with service(http_settings(sim, kaching={"refresh_ms": 1000, "jitter_ms": 0}), clock=clock) as svc:
        assert (await svc.facts(clock())).license.status == "valid"  # type: ignore[union-attr]
        await sim.set_faults("license", throttle=True)
        clock.advance(1000)
        lic = (await svc.facts(clock())).license
        assert lic is not None and lic.status == "throttled"
        assert svc.licence_passed  # throttling is the grace path, not a denial


async def test_stale_facts_are_reported_as_outages(sim: SimHandle) -> None:
    clock = FakeClock()
    async with service(http_settings(sim), clock=clock) as svc:
        fresh = await svc.facts(clock(), network_allowed=True)
        later = clock() + 400_000  # beyond both max ages, yet the caches are not due by their own clock
        stale = await svc.facts(later, network_allowed=True)
    assert fresh.license is not None and stale.license is not None and stale.mcp is not None
    assert stale.license.status == "unreachable" and not stale.license.verified
    assert stale.license.detail.startswith("no fresh licence verdict for ")
    assert not stale.mcp.reachable and "old (max 120000 ms)" in stale.mcp.detail
    assert stale.beat is None
    ctx = GuardContext(project_id="p", transition="License_Throttled", signer="s")
    assert evaluate_guards(["license"], {}, {}, stale, ctx)[0].ok  # a stale licence enters grace


async def test_no_other_provider_is_called_before_the_licence_passes(sim: SimHandle) -> None:
    await sim.set_faults("license", deny=True)
    async with service(http_settings(sim)) as svc:
        clock = FakeClock()
        facts = await svc.facts(clock(), inputs={"note": "hi"})
        await svc.refresh_all()
        assert facts.license is not None and facts.license.status == "denied"
        assert facts.mcp is not None and facts.mcp.detail == BLOCKED and facts.beat is None
        assert facts.policy.external_breaches == (f"policy endpoint unreachable: {BLOCKED}",)
        assert (sim.requests("mcp"), sim.requests("backbeat"), sim.requests("policy")) == (0, 0, 0)
        await sim.clear_faults()
        await svc.refresh_all()
        assert svc.licence_passed
        facts = await svc.facts(clock(), inputs={"note": "hi"})
    assert facts.mcp is not None and facts.mcp.reachable and facts.beat is not None
    assert facts.policy.external_breaches == ()
    assert (sim.requests("mcp"), sim.requests("backbeat"), sim.requests("policy")) == (1, 1, 1)


async def test_project_gate_blocks_even_a_licensed_worker(sim: SimHandle) -> None:
    async with service(http_settings(sim)) as svc:
        facts = await svc.facts(FakeClock()(), network_allowed=False, inputs={})
    assert svc.licence_passed and facts.mcp is not None and facts.mcp.detail == BLOCKED
    assert (sim.requests("license"), sim.requests("mcp"), sim.requests("policy")) == (1, 0, 0)


def test_network_allowed_reads_the_project_state() -> None:
    def state(phase: str, comms: bool) -> dict[str, Any]:
        return {"boot": {"phase": phase}, "control": {"license": {"external_comms": comms}}}

    assert network_allowed(state("LICENSED", True))
    assert not network_allowed(state("LICENSE_CHECK", True))
    assert not network_allowed(state("LICENSED", False))  # licence grace expired
    assert not network_allowed({})


async def test_background_refresher_keeps_facts_warm_and_stops(sim: SimHandle) -> None:
    fast = {"refresh_ms": 100, "jitter_ms": 20, "retry_ms": 50}
    settings = http_settings(sim, kaching=fast, mcp=fast)
    async with FactsService(settings, seed=7):
        # Refreshes every ~100 ms: wait for three licence fetches and two MCP ones (mcp starts once the
        # licence passed), however slowly a loaded machine gets there; no wall-clock count is asserted.
        for _ in range(200):
            if sim.requests("license") >= 3 and sim.requests("mcp") >= 2:
                break
            await asyncio.sleep(0.05)
    after_close = sim.requests("license")
    assert after_close >= 3 and sim.requests("mcp") >= 2
    await asyncio.sleep(0.3)
    assert sim.requests("license") == after_close  # stopped: no fetch after the service closed


async def test_beat_frame_is_refreshed_when_its_phase_ends(sim: SimHandle) -> None:
    clock = FakeClock()
    async with service(http_settings(sim), clock=clock) as svc:
        first = (await svc.facts(clock(), network_allowed=True)).beat
        again = (await svc.facts(clock(), network_allowed=True)).beat
        assert first is not None and again == first and sim.requests("backbeat") == 1
        clock.now_ms = first.deadline_at_ms
        await svc.facts(clock(), network_allowed=True)
    assert sim.requests("backbeat") == 2


async def test_pushed_beat_frame_is_served_without_polling(sim: SimHandle) -> None:
    clock = FakeClock()
    async with service(http_settings(sim), clock=clock) as svc:
        frame = sim.state.schedule.frame(clock())
        pushed = svc.ingest_beat(frame_payload(frame, sent_at_ms=clock()))
        facts = await svc.facts(clock(), network_allowed=True)
    assert facts.beat == pushed and sim.requests("backbeat") == 0


async def test_pushed_beat_frame_refused_in_embedded_mode() -> None:
    async with service(Settings()) as svc:
        with pytest.raises(ValueError, match="embedded mode"):
            svc.ingest_beat({})


async def test_external_policy_only_asked_with_inputs(sim: SimHandle) -> None:
    async with service(http_settings(sim)) as svc:
        plain = await svc.facts(FakeClock()(), network_allowed=True)
        checked = await svc.facts(FakeClock()(), network_allowed=True, inputs={"x": "forbidden"}, evidence=["e"])
    assert plain.policy.external_breaches == ()
    assert checked.policy.external_breaches == ("external: sim-forbidden (high) at inputs.x",)
    assert sim.requests("policy") == 1


async def test_embedded_defaults_need_nothing_running(tmp_path: Path) -> None:
    clock = FakeClock()
    create_dev_license(tmp_path, now_ms=clock())
    settings = Settings.load({"SWOOSH_DATA_DIR": str(tmp_path)})
    async with service(settings, clock=clock) as svc:
        facts = await svc.facts(clock(), inputs={"note": "clean"})
        summary = svc.summary()
    assert facts.license is not None and facts.license.verified and facts.license.license_id == "dev-license"
    assert facts.mcp is not None and facts.mcp.tools == settings.mcp.tools
    assert facts.beat is not None and facts.beat.received_at_ms == clock()
    ctx = GuardContext(
        project_id="p", transition="t", signer="s", window_id=facts.beat.window_id, window_class=facts.beat.phase
    )
    outcomes = evaluate_guards(
        ["license", "mcp", "window", "policy"], {}, {"tool_pins": dict(settings.mcp.tools), "note": "clean"}, facts, ctx
    )
    assert [o.ok for o in outcomes] == [True, True, True, True], outcomes
    assert summary == {"license": "valid", "mcp": "reachable", "backbeat": "embedded schedule", "shhh": "embedded"}


async def test_embedded_licence_missing_fails_closed(tmp_path: Path) -> None:
    async with service(Settings.load({"SWOOSH_DATA_DIR": str(tmp_path)})) as svc:
        facts = await svc.facts(FakeClock()())
    assert facts.license is not None and facts.license.status == "denied" and not svc.licence_passed


async def test_fact_cache_fetch_error_reaches_every_waiter_and_schedules_a_retry() -> None:
    clock = FakeClock()
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise RuntimeError("provider bug")

    c = cache(broken, clock)
    results = await asyncio.gather(c.get(), c.get(), return_exceptions=True)
    assert calls == 1 and all(isinstance(r, RuntimeError) for r in results)
    assert c.next_refresh_at_ms is not None and clock() < c.next_refresh_at_ms <= clock() + 100


async def test_fact_cache_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    clock = FakeClock()

    async def slow() -> int:
        await asyncio.sleep(0.05)
        return 42

    c = cache(slow, clock)
    first = asyncio.ensure_future(c.get())
    second = asyncio.ensure_future(c.get())
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == 42 and c.fetches == 1 and c.value == 42
