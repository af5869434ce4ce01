"""Seeded fault schedules: reproducible from the seed, rates bounded, every kind present in `quick`."""

from __future__ import annotations

from pathlib import Path

import pytest

from swoosh.chaos.faults import choose_reset_point, rollback_sink
from swoosh.chaos.schedule import PROFILES, SCHEDULED_KINDS, Profile, ProposalFaults, build_schedule, schedule_digest


def test_schedule_same_seed_same_schedule() -> None:
    a = build_schedule(7, PROFILES["quick"])
    b = build_schedule(7, PROFILES["quick"])
    assert a == b and schedule_digest(a) == schedule_digest(b)


def test_schedule_other_seed_other_schedule() -> None:
    assert schedule_digest(build_schedule(7, PROFILES["quick"])) != schedule_digest(
        build_schedule(8, PROFILES["quick"])
    )


def test_schedule_quick_seed_1_fires_every_kind_inside_the_run() -> None:
    profile = PROFILES["quick"]
    events = build_schedule(1, profile)
    assert {e.kind for e in events} == set(SCHEDULED_KINDS)
    assert all(profile.warmup_s <= e.at_s < profile.duration_s - profile.cooldown_s for e in events)
    assert [e.at_s for e in events] == sorted(e.at_s for e in events)


def test_proposal_faults_same_seed_same_draws() -> None:
    a = ProposalFaults(3, "chaos-0", PROFILES["quick"])
    b = ProposalFaults(3, "chaos-0", PROFILES["quick"])
    assert [a.draw() for _ in range(500)] == [b.draw() for _ in range(500)]


def test_proposal_fault_rates_are_bounded() -> None:
    with pytest.raises(ValueError, match="outside 0-10%"):
        Profile(name="x", duration_s=10, projects=1, workers=1, drop_rate=0.2)


def test_proposal_fault_rates_roughly_as_configured() -> None:
    f = ProposalFaults(1, "chaos-1", PROFILES["quick"])
    draws = [f.draw() for _ in range(20_000)]
    assert 0.04 < draws.count("duplicate") / len(draws) < 0.06


def test_choose_reset_point_goes_back_and_skips_empty_runs() -> None:
    points = [(4, 10), (9, 11), (15, 12), (20, 13)]
    assert choose_reset_point(points, 2) == (9, 11)
    assert choose_reset_point(points, 10) == (4, 10)
    assert choose_reset_point([(4, 10), (9, 10)], 1) is None


def test_rollback_sink_moves_records_after_the_kept_index(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(f'{{"index":{i}}}\n' for i in range(1, 6)))
    assert rollback_sink(tmp_path, "p", 3, "1") == 2
    assert path.read_text().count("\n") == 3
    assert (tmp_path / "p.jsonl.reset-1").read_text().count("\n") == 2
