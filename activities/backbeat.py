"""BACKBEAT windows: a local beat schedule (embedded) or `backbeat.beatframe.v1` frames over HTTP.

A bar is `beats_per_bar` beats at `tempo_bpm`; each bar is split into the plan, work, review and reverb
phases in that order, by integer percent of the bar or by whole beats. Bar `n` is the window
`backbeat:W-<n>`. Everything is integer milliseconds since the Unix epoch, so frames hash portably.

Two frame shapes are read over HTTP: SWOOSH's own (the simulator's default; phases named after the
window classes) and BACKBEAT's published BeatFrame (INT-A: `cluster_id`, `downbeat`, `hlc`, phases
`plan|execute|review`, a 32-hex `window_id`), mapped onto the window classes by `parse_published`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from swoosh.activities.config import BackbeatSettings
from swoosh.guards.facts import BeatFrame
from swoosh.workflows.statechart import WindowClass

log = logging.getLogger("swoosh.activities.backbeat")

FRAME_TYPE = "backbeat.beatframe.v1"
PHASES: tuple[WindowClass, ...] = ("plan", "work", "review", "reverb")
WINDOW_PREFIX = "backbeat:W-"
MAX_BACKOFF_MS = 3_600_000

# BACKBEAT's published BeatFrame (contracts/schemas/beatframe-v1.schema.json): its phases and how each
# maps onto a SWOOSH window class. `reverb` has no BACKBEAT phase: it is the tail of the bar's review
# phase, the bar's last `reverb` share (see `BarShape`).
BACKBEAT_PHASES: dict[str, WindowClass] = {"plan": "plan", "execute": "work", "review": "review"}
PUBLISHED_REQUIRED = (
    "type",
    "cluster_id",
    "beat_index",
    "downbeat",
    "phase",
    "hlc",
    "deadline_at",
    "tempo_bpm",
    "window_id",
)
PUBLISHED_KEYS = frozenset({*PUBLISHED_REQUIRED, "metadata"})
CLUSTER_ID_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
BACKBEAT_HLC_RE = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}:[0-9a-fA-F]{4}")
BACKBEAT_WINDOW_RE = re.compile(r"[0-9a-fA-F]{32}")
BACKBEAT_WINDOW_PREFIX = "backbeat:"


def window_id(bar: int) -> str:
    """The window id of a bar."""
    return f"{WINDOW_PREFIX}{bar}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A BACKBEAT schedule: tempo, bar length and each phase's share of the bar, all integers."""

    tempo_bpm: int = 30
    beats_per_bar: int = 4
    shares: tuple[int, int, int, int] = (25, 25, 25, 25)  # plan, work, review, reverb
    share_unit: Literal["percent", "beats"] = "percent"
    epoch_ms: int = 0

    def __post_init__(self) -> None:
        if self.tempo_bpm < 1 or self.beats_per_bar < 1 or min(self.shares) < 1:
            raise ValueError("tempo, beats per bar and every phase share must be at least 1")
        want = 100 if self.share_unit == "percent" else self.beats_per_bar
        if sum(self.shares) != want:
            raise ValueError(f"phase shares sum to {sum(self.shares)}, must be {want}")

    @classmethod
    def from_settings(cls, s: BackbeatSettings) -> Schedule:
        return cls(s.tempo_bpm, s.beats_per_bar, (s.plan, s.work, s.review, s.reverb), s.share_unit, s.epoch_ms)

    def beat_start_ms(self, beat: int) -> int:
        """When beat `beat` (counted from the epoch) starts."""
        return self.epoch_ms + beat * 60_000 // self.tempo_bpm

    def beat_index(self, at_ms: int) -> int:
        """The beat in progress at `at_ms`: the largest k with beat_start_ms(k) <= at_ms."""
        self._check(at_ms)
        return ((at_ms - self.epoch_ms + 1) * self.tempo_bpm - 1) // 60_000

    def bar_index(self, at_ms: int) -> int:
        return self.beat_index(at_ms) // self.beats_per_bar

    def phases(self, bar: int) -> list[tuple[WindowClass, int, int]]:
        """Each phase of bar `bar` with its [start, end) in ms."""
        first = bar * self.beats_per_bar
        start, end = self.beat_start_ms(first), self.beat_start_ms(first + self.beats_per_bar)
        out: list[tuple[WindowClass, int, int]] = []
        cum = 0
        for phase, share in zip(PHASES, self.shares, strict=True):
            lo = self._offset(first, start, end, cum)
            cum += share
            out.append((phase, lo, self._offset(first, start, end, cum)))
        return out

    def _offset(self, first_beat: int, start: int, end: int, cum: int) -> int:
        if self.share_unit == "beats":
            return self.beat_start_ms(first_beat + cum)
        return start + (end - start) * cum // 100

    def frame(self, at_ms: int, pressure: int = 0) -> BeatFrame:
        """The beat frame at `at_ms`: its bar's window, the phase in progress and when that phase ends."""
        beat = self.beat_index(at_ms)
        bar = beat // self.beats_per_bar
        for phase, lo, hi in self.phases(bar):
            if lo <= at_ms < hi:
                return BeatFrame(
                    window_id=window_id(bar),
                    phase=phase,
                    beat_index=beat,
                    tempo_bpm=self.tempo_bpm,
                    deadline_at_ms=hi,
                    pressure=pressure,
                    received_at_ms=at_ms,
                )
        raise AssertionError("phases cover the bar")  # unreachable: the phases tile [bar start, bar end)

    def is_open(self, window_class: WindowClass, at_ms: int, window: str | None = None) -> bool:
        """True when `window_class` is the phase in progress at `at_ms` (and, if given, in window `window`)."""
        f = self.frame(at_ms)
        return f.phase == window_class and (window is None or f.window_id == window)

    def next_open(self, window_class: WindowClass, at_ms: int) -> tuple[str, int, int]:
        """The next (or current) `window_class` phase at or after `at_ms`: (window_id, start, end)."""
        bar = self.bar_index(at_ms)
        for b in (bar, bar + 1):
            for phase, lo, hi in self.phases(b):
                if phase == window_class and hi > at_ms:
                    return window_id(b), lo, hi
        raise AssertionError("every bar has every phase")

    def _check(self, at_ms: int) -> None:
        if at_ms < self.epoch_ms:
            raise ValueError(f"{at_ms} is before the schedule's epoch {self.epoch_ms}")


@dataclass(frozen=True, slots=True)
class BarShape:
    """How SWOOSH reads BACKBEAT's bars: their length in beats, and how many final beats are reverb."""

    beats_per_bar: int = 4
    reverb_beats: int = 1

    def __post_init__(self) -> None:
        if self.beats_per_bar < 1 or not 0 <= self.reverb_beats < self.beats_per_bar:
            raise ValueError("a bar has at least one beat and fewer reverb beats than beats")

    @classmethod
    def of(cls, schedule: Schedule) -> BarShape:
        """The bar shape of a schedule: its beats per bar and its reverb share, in whole beats (at least 1)."""
        share = schedule.shares[3]
        beats = share if schedule.share_unit == "beats" else schedule.beats_per_bar * share // 100
        return cls(
            schedule.beats_per_bar, min(max(beats, 1), schedule.beats_per_bar - 1) if schedule.beats_per_bar > 1 else 0
        )

    def position(self, beat_index: int, downbeat_index: int) -> int:
        """The beat's place in its bar, counted from the last downbeat seen."""
        return (beat_index - downbeat_index) % self.beats_per_bar

    def in_reverb(self, position: int) -> bool:
        return position >= self.beats_per_bar - self.reverb_beats


def retry_backoff_ms(base_ms: int, pressure: int, attempt: int = 0, max_ms: int = MAX_BACKOFF_MS) -> int:
    """Retry delay: `base_ms` doubled per attempt and scaled by pressure (0 → ×1 … 100 → ×4), capped.

    Integer only, so callers can record it in decision records.
    """
    p = min(max(pressure, 0), 100)
    doubled = max(base_ms, 0) << min(max(attempt, 0), 32)
    return min(doubled * (100 + 3 * p) // 100, max_ms)


def _ms(value: Any, field: str) -> int:
    """A timestamp as epoch ms, from an int or an RFC 3339 string (BACKBEAT sends either)."""
    if isinstance(value, bool):
        raise ValueError(f"{field} is not a timestamp")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{field} is not an RFC 3339 timestamp") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        delta = parsed - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    raise ValueError(f"{field} is not a timestamp")


def _pressure(value: Any) -> int:
    """Pressure as an integer percent; BACKBEAT may send 0..100 or an amplitude 0.0..1.0."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise ValueError("pressure is not a number")
    if isinstance(value, int) and 0 <= value <= 100:
        return value
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return round(value * 100)
    raise ValueError("pressure must be 0-100 or an amplitude 0.0-1.0")


def format_ms(ms: int) -> str:
    """Epoch ms as RFC 3339 UTC with milliseconds, the form the simulator sends."""
    return datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def parse_frame(data: Mapping[str, Any], received_at_ms: int, max_skew_ms: int) -> BeatFrame:
    """A `backbeat.beatframe.v1` payload as a BeatFrame in local time; ValueError when it cannot be trusted.

    When the frame carries `sent_at` (the sender's clock), the sender's offset from the local clock is
    measured: beyond `max_skew_ms` the frame is refused; within it the deadline is shifted into local time.
    """
    if data.get("type", FRAME_TYPE) != FRAME_TYPE:
        raise ValueError(f"not a {FRAME_TYPE} frame")
    phase = str(data.get("phase", "")).lower()
    if phase not in PHASES:
        raise ValueError(f"unknown phase {data.get('phase')!r}")
    wid, beat, tempo = data.get("window_id"), data.get("beat_index"), data.get("tempo_bpm")
    if not isinstance(wid, str) or not wid:
        raise ValueError("window_id missing")
    if not isinstance(beat, int) or isinstance(beat, bool) or beat < 0:
        raise ValueError("beat_index must be a non-negative integer")
    if not isinstance(tempo, int) or isinstance(tempo, bool) or tempo < 1:
        raise ValueError("tempo_bpm must be a positive integer")
    deadline = _ms(data.get("deadline_at"), "deadline_at")
    offset = 0
    if data.get("sent_at") is not None:
        offset = _ms(data["sent_at"], "sent_at") - received_at_ms
        if abs(offset) > max_skew_ms:
            raise ValueError(f"BACKBEAT clock is {offset} ms off the local clock (max skew {max_skew_ms} ms)")
    return BeatFrame(
        window_id=wid,
        phase=phase,
        beat_index=beat,
        tempo_bpm=tempo,
        deadline_at_ms=deadline - offset,
        pressure=_pressure(data.get("pressure")),
        received_at_ms=received_at_ms,
    )


def _tempo_tenths(value: Any) -> int:
    """BACKBEAT's tempo (a number, 0.1-1000, a multiple of 0.1) as an integer count of tenths."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("tempo_bpm is not a number")
    tenths = round(value * 10)
    if abs(value * 10 - tenths) > 1e-6 or not 1 <= tenths <= 10_000:
        raise ValueError("tempo_bpm must be 0.1-1000 in steps of 0.1")
    return tenths


def parse_published(data: Mapping[str, Any], received_at_ms: int, bar: BarShape, downbeat_index: int = 0) -> BeatFrame:
    """BACKBEAT's published BeatFrame as a BeatFrame of SWOOSH's window classes; ValueError when malformed.

    plan → plan, execute → work, review → review; the last `bar.reverb_beats` beats of each bar (counted
    from the last downbeat, `downbeat_index`) are reverb when BACKBEAT says review there. A review
    frame's deadline is where the reverb tail starts (at most one beat late), a reverb frame's is
    BACKBEAT's own. The window is `backbeat:<window_id>` (lower-case hex).
    """
    unknown = sorted(set(data) - PUBLISHED_KEYS)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    missing = [k for k in PUBLISHED_REQUIRED if k not in data]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")
    if data["type"] != FRAME_TYPE:
        raise ValueError(f"not a {FRAME_TYPE} frame")
    cluster, beat, downbeat = data["cluster_id"], data["beat_index"], data["downbeat"]
    phase, hlc, wid = data["phase"], data["hlc"], data["window_id"]
    if not isinstance(cluster, str) or not CLUSTER_ID_RE.fullmatch(cluster):
        raise ValueError("cluster_id must be 1-64 of [a-zA-Z0-9_-]")
    if not isinstance(beat, int) or isinstance(beat, bool) or not 0 <= beat < 2**63:
        raise ValueError("beat_index must be a non-negative integer")
    if not isinstance(downbeat, bool):
        raise ValueError("downbeat must be true or false")
    if phase not in BACKBEAT_PHASES:
        raise ValueError(f"unknown phase {phase!r} (BACKBEAT's are plan, execute, review)")
    if not isinstance(hlc, str) or not BACKBEAT_HLC_RE.fullmatch(hlc):
        raise ValueError("hlc must be wall:logical:node, 4 hex digits each")
    if not isinstance(wid, str) or not BACKBEAT_WINDOW_RE.fullmatch(wid):
        raise ValueError("window_id must be 32 hex digits")
    if "metadata" in data and not isinstance(data["metadata"], Mapping):
        raise ValueError("metadata must be an object")
    if not isinstance(data["deadline_at"], str):
        raise ValueError("deadline_at is not an RFC 3339 timestamp")
    deadline = _ms(data["deadline_at"], "deadline_at")
    tenths = _tempo_tenths(data["tempo_bpm"])
    window_class = BACKBEAT_PHASES[phase]
    deadline_ms = deadline
    if window_class == "review":
        position = bar.position(beat, beat if downbeat else downbeat_index)
        if bar.in_reverb(position):
            window_class = "reverb"
        else:
            tail_in = (bar.beats_per_bar - bar.reverb_beats - position) * 600_000 // tenths
            deadline_ms = min(deadline, received_at_ms + tail_in)
    return BeatFrame(
        window_id=BACKBEAT_WINDOW_PREFIX + wid.lower(),
        phase=window_class,
        beat_index=beat,
        tempo_bpm=max(1, (tenths + 5) // 10),
        deadline_at_ms=deadline_ms,
        received_at_ms=received_at_ms,
        cluster_id=cluster,
        downbeat=downbeat,
        hlc=hlc.lower(),
    )


def published_window_id(cluster_id: str, bar: int) -> str:
    """A bar's 32-hex window id as a BACKBEAT-shaped sender (the simulator) names it."""
    return hashlib.sha256(f"{cluster_id}:{bar}".encode()).hexdigest()[:32]


def published_payload(schedule: Schedule, at_ms: int, cluster_id: str = "swoosh-sim", node: int = 0) -> dict[str, Any]:
    """The frame at `at_ms` in BACKBEAT's published shape: work is `execute`, reverb is the tail of `review`."""
    frame = schedule.frame(at_ms)
    bar = frame.beat_index // schedule.beats_per_bar
    ends = {phase: hi for phase, _, hi in schedule.phases(bar)}
    published = {"plan": "plan", "work": "execute", "review": "review", "reverb": "review"}[frame.phase]
    deadline = ends["reverb"] if published == "review" else frame.deadline_at_ms
    return {
        "type": FRAME_TYPE,
        "cluster_id": cluster_id,
        "beat_index": frame.beat_index,
        "downbeat": frame.beat_index % schedule.beats_per_bar == 0,
        "phase": published,
        "hlc": f"{(at_ms // 1000) & 0xFFFF:04x}:{frame.beat_index & 0xFFFF:04x}:{node & 0xFFFF:04x}",
        "deadline_at": format_ms(deadline),
        "tempo_bpm": float(schedule.tempo_bpm),
        "window_id": published_window_id(cluster_id, bar),
    }


def frame_payload(frame: BeatFrame, sent_at_ms: int | None = None) -> dict[str, Any]:
    """A BeatFrame as a `backbeat.beatframe.v1` payload, in the sender's clock (`sent_at` optional)."""
    payload: dict[str, Any] = {
        "type": FRAME_TYPE,
        "beat_index": frame.beat_index,
        "phase": frame.phase,
        "window_id": frame.window_id,
        "tempo_bpm": frame.tempo_bpm,
        "deadline_at": format_ms(frame.deadline_at_ms),
        "pressure": frame.pressure,
    }
    if sent_at_ms is not None:
        payload["sent_at"] = format_ms(sent_at_ms)
    return payload


class EmbeddedBeatProvider:
    """Beat frames computed from the local schedule: no I/O, the same answer for the same time."""

    def __init__(self, schedule: Schedule, pressure: int = 0) -> None:
        self.schedule = schedule
        self.pressure = pressure

    async def beat(self, at_ms: int) -> BeatFrame | None:
        return self.schedule.frame(at_ms, self.pressure)


class HttpBeatProvider:
    """Beat frames polled from `GET {base_url}/v1/backbeat/frame` (or pushed in through `ingest`)."""

    PATH = "/v1/backbeat/frame"

    def __init__(
        self, client: httpx.AsyncClient, clock: Callable[[], int], max_skew_ms: int, bar: BarShape | None = None
    ) -> None:
        self.client = client
        self.clock = clock
        self.max_skew_ms = max_skew_ms
        self.bar = bar or BarShape()
        self.downbeat_index = 0  # the last downbeat a published frame announced: where bars start
        self.last_error = ""

    async def beat(self, at_ms: int) -> BeatFrame | None:
        """Poll the current frame; None (with `last_error` set) when BACKBEAT cannot be reached or trusted."""
        try:
            response = await self.client.get(self.PATH)
        except httpx.TimeoutException:
            return self._fail("BACKBEAT timed out")
        except httpx.HTTPError as err:
            return self._fail(f"BACKBEAT unreachable: {type(err).__name__}")
        if response.status_code != 200:
            return self._fail(f"BACKBEAT answered HTTP {response.status_code}")
        try:
            return self.ingest(response.json())
        except ValueError as err:
            return self._fail(f"BACKBEAT frame rejected: {err}")

    def ingest(self, payload: Any) -> BeatFrame:
        """Parse a frame received now (polled, or pushed to the API); ValueError when malformed or skewed."""
        if not isinstance(payload, Mapping):
            raise ValueError("a beat frame is a JSON object")
        if "cluster_id" in payload:  # BACKBEAT's published shape
            frame = parse_published(payload, self.clock(), self.bar, self.downbeat_index)
            if frame.downbeat:
                self.downbeat_index = frame.beat_index
        else:
            frame = parse_frame(payload, self.clock(), self.max_skew_ms)
        self.last_error = ""
        return frame

    def _fail(self, detail: str) -> BeatFrame | None:
        self.last_error = detail
        log.warning("backbeat frame unavailable: %s", detail)
        return None
