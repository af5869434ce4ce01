"""End-to-end chaos smoke: two projects for about a minute, real processes, seeded faults; nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from swoosh.chaos.report import RecoveryMetrics
from swoosh.chaos.runner import run_chaos
from swoosh.chaos.schedule import PROFILES

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(240)]


async def test_chaos_smoke_seed_3_loses_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    metrics = RecoveryMetrics()
    report = await run_chaos(3, PROFILES["smoke"], tmp_path / "chaos", log=lines.append, metrics=metrics)
    text = "\n".join(report.lines())
    assert report.violations == 0 and report.lost == 0, text
    assert report.transitions >= 20, text
    assert report.fault_counts["worker_kill"] >= 1 and report.fault_counts["snapshot"] >= 1, text
    assert report.lines()[-1] == report.summary_line()
    assert report.summary_line().startswith("chaos seed=3 profile=smoke transitions=")
    assert b"swoosh_recovery_time_seconds" in metrics.exposition()
    assert (tmp_path / "chaos" / "report.json").exists()
