"""BACKBEAT's published BeatFrame (INT-A): read by the provider, mapped onto window classes, served by the sim."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import httpx
import pytest

from swoosh.activities.backbeat import (
    BarShape,
    HttpBeatProvider,
    Schedule,
    format_ms,
    parse_published,
    published_payload,
)
from swoosh.chaos.simulator import SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.window import window_guard

from .conftest import FakeClock

T0 = 1_760_000_000_000  # a bar boundary at 30 bpm x 4 beats (8 s bars, 2 s beats)
BAR = BarShape(beats_per_bar=4, reverb_beats=1)

# The constraints of BACKBEAT's contracts/schemas/beatframe-v1.schema.json, as its validator applies them.
REQUIRED = ("type", "cluster_id", "beat_index", "downbeat", "phase", "hlc", "deadline_at", "tempo_bpm", "window_id")
PATTERNS = {
    "cluster_id": re.compile(r"^[a-zA-Z0-9_-]+$"),
    "hlc": re.compile(r"^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$"),
    "window_id": re.compile(r"^[0-9a-fA-F]{32}$"),
}


def schema_problems(frame: dict[str, Any]) -> list[str]:
    """Every way `frame` breaks the published BeatFrame schema (empty: valid)."""
    problems = [f"missing {k}" for k in REQUIRED if k not in frame]
    problems += [f"extra {k}" for k in frame if k not in (*REQUIRED, "metadata")]
    if frame.get("type") != "backbeat.beatframe.v1":
        problems.append("type")
    for key, pattern in PATTERNS.items():
        if not isinstance(frame.get(key), str) or not pattern.match(frame[key]):
            problems.append(key)
    if not 1 <= len(str(frame.get("cluster_id", ""))) <= 64:
        problems.append("cluster_id length")
    beat = frame.get("beat_index")
    if not isinstance(beat, int) or isinstance(beat, bool) or beat < 0:
        problems.append("beat_index")
    if not isinstance(frame.get("downbeat"), bool):
        problems.append("downbeat")
    if frame.get("phase") not in ("plan", "execute", "review"):
        problems.append("phase")
    tempo = frame.get("tempo_bpm")
    if not isinstance(tempo, (int, float)) or not 0.1 <= tempo <= 1000 or abs(tempo * 10 - round(tempo * 10)) > 1e-9:
        problems.append("tempo_bpm")
    try:
        datetime.fromisoformat(str(frame.get("deadline_at")))
    except ValueError:
        problems.append("deadline_at")
    return problems


def frame(**change: Any) -> dict[str, Any]:
    """A valid published frame: cluster `prod-a`, beat 1 of the bar starting at T0, execute phase."""
    base: dict[str, Any] = {
        "type": "backbeat.beatframe.v1",
        "cluster_id": "prod-a",
        "beat_index": 880000001,
        "downbeat": False,
        "phase": "execute",
        "hlc": "7ffd:0001:abcd",
        "deadline_at": format_ms(T0 + 4000),
        "tempo_bpm": 30.0,
        "window_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    base.update(change)
    assert not schema_problems(base), schema_problems(base)
    return base


@pytest.mark.parametrize(
    ("phase", "beat", "window_class"),
    [("plan", 880000000, "plan"), ("execute", 880000001, "work"), ("review", 880000002, "review")],
)
def test_backbeat_phases_map_onto_window_classes(phase: str, beat: int, window_class: str) -> None:
    f = parse_published(frame(phase=phase, beat_index=beat), T0 + beat % 4 * 2000, BAR)
    assert f.phase == window_class
    assert f.window_id == "backbeat:0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert (f.cluster_id, f.hlc, f.downbeat, f.tempo_bpm) == ("prod-a", "7ffd:0001:abcd", False, 30)


def test_reverb_is_the_tail_of_the_review_phase() -> None:
    bar_end = format_ms(T0 + 8000)
    review = parse_published(frame(phase="review", beat_index=880000002, deadline_at=bar_end), T0 + 4000, BAR)
    tail = parse_published(frame(phase="review", beat_index=880000003, deadline_at=bar_end), T0 + 6000, BAR)
    assert (review.phase, review.deadline_at_ms) == ("review", T0 + 6000)  # ends where the tail begins
    assert (tail.phase, tail.deadline_at_ms) == ("reverb", T0 + 8000)


def test_bars_are_counted_from_the_last_downbeat() -> None:
    # A cluster whose bars start at beat 2 (mod 4): beat 5 is the bar's last beat, so review there is reverb.
    f = parse_published(frame(phase="review", beat_index=5), T0, BAR, downbeat_index=2)
    assert f.phase == "reverb"
    assert parse_published(frame(phase="review", beat_index=5), T0, BAR, downbeat_index=0).phase == "review"


def test_upper_case_hex_and_metadata_are_accepted() -> None:
    f = parse_published(frame(window_id="ABCDEF" + "0" * 26, hlc="FFFF:FFFF:FFFF", metadata={"pulse": "1"}), T0, BAR)
    assert f.window_id == "backbeat:abcdef" + "0" * 26 and f.hlc == "ffff:ffff:ffff"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"phase": "work"}, "unknown phase"),
        ({"phase": "reverb"}, "unknown phase"),
        ({"window_id": "backbeat:W-1"}, "32 hex"),
        ({"hlc": "2025-10-19T01:23:45.678+00:00#1"}, "wall:logical:node"),
        ({"cluster_id": "a b"}, "cluster_id"),
        ({"downbeat": "yes"}, "downbeat"),
        ({"tempo_bpm": 2.05}, "steps of 0.1"),
        ({"tempo_bpm": 0}, "steps of 0.1"),
        ({"deadline_at": 1_760_000_000_000}, "RFC 3339"),
        ({"sent_at": "2025-10-09T08:53:20.000Z"}, "unknown field"),
        ({"type": "backbeat.statusclaim.v1"}, "not a backbeat.beatframe.v1"),
    ],
)
def test_malformed_published_frames_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_published({**frame(), **change}, T0, BAR)


def test_missing_fields_are_named() -> None:
    with pytest.raises(ValueError, match=r"missing field.*hlc"):
        parse_published({k: v for k, v in frame().items() if k != "hlc"}, T0, BAR)


def test_bar_shape_follows_the_schedule_settings() -> None:
    assert BarShape.of(Schedule()) == BarShape(4, 1)
    assert BarShape.of(Schedule(beats_per_bar=120, shares=(10, 60, 20, 10))) == BarShape(120, 12)
    assert BarShape.of(Schedule(beats_per_bar=8, shares=(1, 4, 2, 1), share_unit="beats")) == BarShape(8, 1)


@pytest.mark.parametrize("offset", range(0, 8000, 500))
def test_published_payload_is_valid_and_reads_back_as_the_schedule(offset: int) -> None:
    s = Schedule()
    payload = published_payload(s, T0 + offset)
    assert schema_problems(payload) == []
    f = parse_published(payload, T0 + offset, BarShape.of(s))
    assert f.phase == s.frame(T0 + offset).phase
    assert f.deadline_at_ms <= s.frame(T0 + offset).deadline_at_ms + 2000  # at most one beat late


async def test_provider_reads_the_simulator_in_backbeat_shape(sim: SimHandle) -> None:
    await sim.set_beat_format("backbeat")
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=1.0, trust_env=False) as client:
        raw = (await client.get("/v1/backbeat/frame")).json()
        assert schema_problems(raw) == []
        clock = FakeClock()
        f = await HttpBeatProvider(client, clock, max_skew_ms=5000, bar=BarShape.of(sim.state.schedule)).beat(clock())
    assert f is not None and f.cluster_id == "swoosh-sim" and len(f.window_id) == len("backbeat:") + 32
    assert f.phase in {sim.state.schedule.frame(clock() + d).phase for d in (0, 500)}
    ctx = GuardContext(project_id="p", transition="t", signer="s", window_id=f.window_id, window_class=f.phase)
    assert window_guard({}, {}, Facts(now_ms=f.deadline_at_ms - 1, beat=f), ctx).ok
