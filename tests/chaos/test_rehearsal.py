"""The migration rehearsal on the real dev server: unchanged legacy callers through every mode, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from swoosh.chaos.rehearsal import Rehearsal

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(240)]


async def test_migration_rehearsal_loses_nothing_applies_nothing_twice_and_reports_every_divergence(
    tmp_path: Path,
) -> None:
    report = await Rehearsal(tmp_path / "rehearsal", seconds_per_phase=4.0).run()
    text = "\n".join(report.lines())
    print(text)
    assert [p["phase"] for p in report.phases] == [
        "off",
        "shadow",
        "route Council",
        "route Council,Ingestion",
        "route *",
        "bypass",
        "route *",
    ], text
    assert not report.caller_failures, text
    assert report.lost == [] and report.twice == [], text
    assert report.injected >= 4 and report.reported == report.injected and report.missed == [], text
    assert report.false_divergences == [], text
    # a rejection the stand-in injected is a divergence before the caller sends its next transition
    assert report.refusals_seen >= 1 and report.reported_before_next == report.refusals_seen, text
    assert report.probes >= 6 * 6 and report.probes_applied_again == [], text
    by_phase = {p["phase"]: p for p in report.phases}
    assert by_phase["off"]["by_decider"].keys() == {"swoosh"}, text
    assert by_phase["bypass"]["by_decider"].keys() == {"legacy"}, text
    assert by_phase["route *"]["by_decider"].keys() == {"swoosh"}, text
    assert {"swoosh", "legacy"} <= by_phase["route Council"]["by_decider"].keys(), text
    assert all(p["accepted"] >= 10 for p in report.phases), text
    assert (tmp_path / "rehearsal" / "report.json").exists()
