"""The ecosystem simulator itself: admin endpoints, fault semantics, clean shutdown, the `swoosh sim` entry point."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from swoosh.chaos.simulator import (
    FAMILIES,
    Faults,
    SimConfig,
    SimLicence,
    _sim_config,
    add_arguments,
    running_simulator,
)


async def test_simulator_admin_sets_reads_and_clears_faults() -> None:
    async with running_simulator() as sim:
        assert await sim.set_faults("mcp", latency_ms=5, skew_ms=-10) == Faults(latency_ms=5, skew_ms=-10)
        faults = (await sim.admin.get("/admin/faults")).json()
        assert set(faults) == set(FAMILIES) and faults["mcp"]["skew_ms"] == -10
        await sim.clear_faults()
        assert sim.state.faults["mcp"] == Faults()
        assert (await sim.admin.get("/admin/license-key")).json() == {"public_key": sim.public_key}


async def test_simulator_admin_rejects_unknown_family_and_bad_faults() -> None:
    async with running_simulator() as sim:
        assert (await sim.admin.put("/admin/faults/dns", json={})).status_code == 404
        assert (await sim.admin.put("/admin/faults/mcp", json={"error_status": 404})).status_code == 422
        assert (await sim.admin.put("/admin/faults/mcp", json={"explode": True})).status_code == 422


async def test_simulator_counts_requests_per_family() -> None:
    async with running_simulator() as sim, httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as c:
        await c.get("/v1/mcp/tools")
        await c.get("/v1/backbeat/frame")
        await c.get("/v1/backbeat/frame")
        assert await sim.stats() == {"license": 0, "mcp": 1, "policy": 0, "backbeat": 2, "legacy": 0}


async def test_simulator_rejects_malformed_requests_without_5xx() -> None:
    async with running_simulator() as sim, httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as c:
        assert (await c.post("/v1/license/validate", json={"nonce": 1})).status_code == 422
        assert (await c.post("/v1/policy/check", content=b"{")).status_code == 422


async def test_simulator_expired_licence_token() -> None:
    config = SimConfig(tokens={"old": SimLicence(license_id="L", expires_at_ms=1)})
    async with running_simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url, trust_env=False) as c:
        verdict = (await c.post("/v1/license/validate", json={"token": "old", "nonce": "n"})).json()["verdict"]
    assert (verdict["status"], verdict["nonce"]) == ("expired", "n")


async def test_simulator_stops_promptly_with_requests_in_flight() -> None:
    loop = asyncio.get_running_loop()
    async with running_simulator() as sim:
        await sim.set_faults("mcp", latency_ms=60_000)
        client = httpx.AsyncClient(base_url=sim.base_url, timeout=0.2, trust_env=False)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v1/mcp/tools")
        await client.aclose()
        started = loop.time()
        base_url = sim.base_url
    assert loop.time() - started < 3
    async with httpx.AsyncClient(base_url=base_url, timeout=0.5, trust_env=False) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get("/admin/stats")


def test_sim_arguments_build_the_config() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--port", "0", "--tools", "git=2.45.0,pytest=8.2.0", "--tempo-bpm", "60"])
    config = _sim_config(args, "tok")
    assert config.tools == {"git": "2.45.0", "pytest": "8.2.0"} and config.tempo_bpm == 60
    assert set(config.tokens) == {"tok"}
    with pytest.raises(ValueError, match="name=version"):
        _sim_config(parser.parse_args(["--tools", "git"]), "tok")


def test_sim_main_serves_until_sigterm(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "swoosh.chaos.simulator", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(7)]  # the banner and the settings to export
        first = lines[0]
        assert first.startswith("swoosh sim: serving on http://127.0.0.1:")
        base_url = first.split()[4]
        with httpx.Client(base_url=base_url, timeout=2, trust_env=False) as c:
            assert c.get("/admin/stats").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    token = (tmp_path / "sim-token").read_text().strip()
    out = "".join(lines)
    assert f"SWOOSH_KACHING_TOKEN_FILE={tmp_path / 'sim-token'}" in out and token not in out
    assert (tmp_path / "sim-token").stat().st_mode & 0o077 == 0


def test_simulator_port_and_host_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWOOSH_SIM_PORT", "18090")
    monkeypatch.setenv("SWOOSH_SIM_HOST", "127.0.0.2")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port) == ("127.0.0.2", 18090)
    assert parser.parse_args(["--port", "0"]).port == 0
