"""BACKBEAT: the schedule's integer arithmetic, frame parsing, and the HTTP provider against the simulator."""

from __future__ import annotations

import itertools

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swoosh.activities.backbeat import (
    PHASES,
    HttpBeatProvider,
    Schedule,
    format_ms,
    frame_payload,
    parse_frame,
    retry_backoff_ms,
)
from swoosh.chaos.simulator import SimHandle
from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.window import window_guard

from .conftest import FakeClock

T0 = 1_760_000_000_000  # a bar boundary at 30 bpm x 4 beats (8 s bars)


def test_schedule_bar_is_split_into_phases_in_order() -> None:
    s = Schedule(tempo_bpm=30, beats_per_bar=4)  # 2 s beats, 8 s bars, 2 s per phase
    bar = T0 // 8000
    assert s.phases(bar) == [
        ("plan", T0, T0 + 2000),
        ("work", T0 + 2000, T0 + 4000),
        ("review", T0 + 4000, T0 + 6000),
        ("reverb", T0 + 6000, T0 + 8000),
    ]


def test_schedule_frame_names_window_phase_and_deadline() -> None:
    s = Schedule(tempo_bpm=30, beats_per_bar=4)
    f = s.frame(T0 + 4500, pressure=40)
    assert (f.window_id, f.phase, f.deadline_at_ms, f.pressure) == (f"backbeat:W-{T0 // 8000}", "review", T0 + 6000, 40)
    assert f.beat_index == (T0 + 4500) // 2000 and f.received_at_ms == T0 + 4500


def test_schedule_is_open_only_in_its_phase_and_window() -> None:
    s = Schedule(tempo_bpm=30, beats_per_bar=4)
    assert s.is_open("review", T0 + 4000) and not s.is_open("review", T0 + 6000)
    assert not s.is_open("review", T0 + 4000, window=f"backbeat:W-{T0 // 8000 - 1}")
    assert s.next_open("plan", T0 + 100) == (f"backbeat:W-{T0 // 8000}", T0, T0 + 2000)
    assert s.next_open("plan", T0 + 2000)[0] == f"backbeat:W-{T0 // 8000 + 1}"


def test_schedule_shares_in_beats() -> None:
    s = Schedule(tempo_bpm=60, beats_per_bar=8, shares=(1, 4, 2, 1), share_unit="beats")
    bar_start = s.beat_start_ms(8 * 10)
    assert [(p, hi - lo) for p, lo, hi in s.phases(10)] == [
        ("plan", 1000),
        ("work", 4000),
        ("review", 2000),
        ("reverb", 1000),
    ]
    assert s.frame(bar_start + 1000).phase == "work"


def test_schedule_rejects_shares_not_tiling_the_bar() -> None:
    with pytest.raises(ValueError, match="sum to 99"):
        Schedule(shares=(25, 25, 25, 24))


@given(
    tempo=st.integers(1, 600),
    bpb=st.integers(4, 16),
    epoch=st.integers(0, 10**12),
    delta=st.integers(0, 10**10),
)
def test_schedule_frames_are_consistent_at_any_instant(tempo: int, bpb: int, epoch: int, delta: int) -> None:
    s = Schedule(tempo_bpm=tempo, beats_per_bar=bpb, epoch_ms=epoch)
    at = epoch + delta
    k = s.beat_index(at)
    assert s.beat_start_ms(k) <= at < s.beat_start_ms(k + 1)
    f = s.frame(at)
    assert f.deadline_at_ms > at and f.phase in PHASES
    phases = s.phases(k // bpb)
    assert [p for p, _, _ in phases] == list(PHASES)
    assert all(a[2] == b[1] for a, b in itertools.pairwise(phases))


def test_retry_backoff_scales_with_pressure() -> None:
    assert retry_backoff_ms(100, 0) == 100
    assert retry_backoff_ms(100, 50) == 250
    assert retry_backoff_ms(100, 100) == 400
    assert retry_backoff_ms(100, 250) == 400  # clamped to 0-100
    assert retry_backoff_ms(100, 0, attempt=3) == 800
    assert retry_backoff_ms(1000, 100, attempt=40, max_ms=60_000) == 60_000
    assert all(isinstance(retry_backoff_ms(7, p), int) for p in range(101))


def test_parse_frame_accepts_rfc3339_amplitude_and_upper_case_phase() -> None:
    f = parse_frame(
        {
            "type": "backbeat.beatframe.v1",
            "beat_index": 7,
            "phase": "REVIEW",
            "window_id": "backbeat:W-2",
            "tempo_bpm": 90,
            "deadline_at": "2025-10-09T08:53:21.500+00:00",
            "pressure": 0.25,
        },
        received_at_ms=T0,
        max_skew_ms=1000,
    )
    assert (f.phase, f.deadline_at_ms, f.pressure, f.received_at_ms) == ("review", T0 + 1500, 25, T0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "other.v1"}, "not a backbeat.beatframe.v1"),
        ({"phase": "nap"}, "unknown phase"),
        ({"deadline_at": "tomorrow"}, "RFC 3339"),
        ({"pressure": 3.5}, "pressure"),
        ({"beat_index": -1}, "beat_index"),
    ],
)
def test_parse_frame_rejects_malformed(change: dict[str, object], message: str) -> None:
    good = frame_payload(Schedule().frame(T0))
    with pytest.raises(ValueError, match=message):
        parse_frame({**good, **change}, T0, 1000)


def test_frame_payload_round_trips() -> None:
    f = Schedule().frame(T0 + 123)
    assert parse_frame(frame_payload(f, sent_at_ms=T0 + 123), T0 + 123, 0) == f
    assert format_ms(T0 + 5) == "2025-10-09T08:53:20.005Z"


def sim_deadline(schedule: Schedule, window_id: str, phase: str) -> int:
    """The end of `phase` in the bar named by `window_id`, in the schedule's own clock."""
    bar = int(window_id.removeprefix("backbeat:W-"))
    return next(hi for p, _, hi in schedule.phases(bar) if p == phase)


async def test_http_beat_provider_follows_the_simulator(sim: SimHandle) -> None:
    await sim.set_pressure(60)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=1.0, trust_env=False) as client:
        clock = FakeClock()
        frame = await HttpBeatProvider(client, clock, max_skew_ms=5000).beat(clock())
    assert frame is not None and frame.pressure == 60
    assert frame.window_id in {sim.state.schedule.frame(clock() + d).window_id for d in (0, 500)}
    assert abs(frame.deadline_at_ms - sim_deadline(sim.state.schedule, frame.window_id, frame.phase)) < 200
    ctx = GuardContext(project_id="p", transition="t", signer="s", window_id=frame.window_id, window_class=frame.phase)
    assert window_guard({}, {}, Facts(now_ms=frame.deadline_at_ms - 1, beat=frame), ctx).ok


@pytest.mark.parametrize(
    ("faults", "detail"),
    [
        ({"error_status": 502}, "HTTP 502"),
        ({"deny": True}, "HTTP 403"),
        ({"latency_ms": 1000}, "timed out"),
    ],
)
async def test_http_beat_provider_failures_give_no_frame(
    sim: SimHandle, faults: dict[str, object], detail: str
) -> None:
    await sim.set_faults("backbeat", **faults)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=0.2, trust_env=False) as client:
        provider = HttpBeatProvider(client, FakeClock(), max_skew_ms=5000)
        assert await provider.beat(0) is None
    assert detail in provider.last_error


async def test_http_beat_provider_unreachable_server_gives_no_frame() -> None:
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=0.2, trust_env=False) as client:
        provider = HttpBeatProvider(client, FakeClock(), max_skew_ms=5000)
        assert await provider.beat(0) is None
    assert "unreachable" in provider.last_error


async def test_http_beat_provider_corrects_small_clock_skew(sim: SimHandle) -> None:
    await sim.set_faults("backbeat", skew_ms=3000)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=1.0, trust_env=False) as client:
        frame = await HttpBeatProvider(client, FakeClock(), max_skew_ms=5000).beat(0)
    assert frame is not None
    # the simulator's clock is 3 s ahead: its deadline is moved back into local time
    in_sim_clock = sim_deadline(sim.state.schedule, frame.window_id, frame.phase)
    assert abs(frame.deadline_at_ms - (in_sim_clock - 3000)) < 200


async def test_http_beat_provider_refuses_large_clock_skew(sim: SimHandle) -> None:
    await sim.set_faults("backbeat", skew_ms=-60_000)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=1.0, trust_env=False) as client:
        provider = HttpBeatProvider(client, FakeClock(), max_skew_ms=5000)
        assert await provider.beat(0) is None
    assert "ms off the local clock" in provider.last_error


async def test_http_beat_provider_flapping_alternates(sim: SimHandle) -> None:
    await sim.set_faults("backbeat", flap_every=2)
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=1.0, trust_env=False) as client:
        clock = FakeClock()
        provider = HttpBeatProvider(client, clock, max_skew_ms=5000)
        got = [await provider.beat(0) is not None for _ in range(6)]
    assert got == [True, True, False, False, True, True]
