"""Per-project admission, without Temporal: slots, the bounded queue, 429 and cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from swoosh.api.server.admission import Admission
from swoosh.api.server.problems import OverloadedProblem
from swoosh.worker.api_server import build_server
from swoosh.worker.settings import Settings
from swoosh.workflows.errors import ConfigError


async def test_admission_bounds_in_flight_and_queue() -> None:
    adm = Admission(max_in_flight=2, max_waiting=1, max_wait_s=5, retry_after_s=3)
    release = asyncio.Event()
    peak = 0
    running = 0

    async def job() -> str:
        nonlocal peak, running
        try:
            async with adm.slot("p"):
                running += 1
                peak = max(peak, running)
                await release.wait()
                running -= 1
                return "ok"
        except OverloadedProblem as err:
            assert err.retry_after == 3
            return "429"

    tasks = [asyncio.create_task(job()) for _ in range(5)]
    await asyncio.sleep(0.05)
    assert adm.load("p") == (2, 1)
    release.set()
    results = await asyncio.gather(*tasks)
    assert sorted(results) == ["429", "429", "ok", "ok", "ok"]
    assert peak == 2
    assert adm.load("p") == (0, 0) and not adm._gates  # idle projects are forgotten


async def test_admission_projects_are_independent() -> None:
    adm = Admission(max_in_flight=1, max_waiting=0)
    async with adm.slot("a"):
        async with adm.slot("b"):
            with pytest.raises(OverloadedProblem):
                async with adm.slot("a"):
                    pass


async def test_admission_wait_is_bounded_in_time() -> None:
    adm = Admission(max_in_flight=1, max_waiting=5, max_wait_s=0.05)
    async with adm.slot("p"):
        with pytest.raises(OverloadedProblem, match="waited"):
            async with adm.slot("p"):
                pass
    assert adm.load("p") == (0, 0)


def test_admission_rejects_a_bound_above_temporals() -> None:
    with pytest.raises(ValueError):
        Admission(max_in_flight=11)


def test_admission_per_replica_comes_from_the_settings(tmp_path: Path) -> None:
    """`api.max_in_flight` etc. reach the API a `swoosh api` process serves (no Temporal needed to build it)."""
    env = {
        "SWOOSH_API_MAX_IN_FLIGHT": "5",
        "SWOOSH_API_MAX_WAITING": "7",
        "SWOOSH_API_MAX_WAIT_MS": "2500",
        "SWOOSH_DATA_DIR": str(tmp_path),
    }
    server = build_server(Settings.load(env), None, None, port=0)
    admission = server.config.app.state.gateway.admission
    assert (admission.max_in_flight, admission.max_waiting, admission.max_wait_s) == (5, 7, 2.5)


def test_admission_setting_above_temporals_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"api\.max_in_flight from SWOOSH_API_MAX_IN_FLIGHT"):
        Settings.load({"SWOOSH_API_MAX_IN_FLIGHT": "11"})
