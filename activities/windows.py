"""BACKBEAT windows as callers need to see them: which window is open now, and when each class opens next.

The worker's guards decide on the facts of its own provider; this tells callers what those facts will
say, from the same settings: the embedded schedule (exact: every phase of this bar and the next), or in
`http` mode the frame BACKBEAT serves now (only the phase in progress is known ahead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from swoosh.activities.backbeat import PHASES, BarShape, HttpBeatProvider, Schedule
from swoosh.activities.config import BackbeatSettings


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class BackbeatWindows:
    """The window table the API serves at `GET /v1/projects/{id}/window`."""

    def __init__(self, settings: BackbeatSettings, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.settings = settings
        self.clock = clock
        self.schedule = Schedule.from_settings(settings)
        self._client: httpx.AsyncClient | None = None
        self._http: HttpBeatProvider | None = None
        if settings.mode == "http":
            timeout = httpx.Timeout(settings.timeout_ms / 1000, connect=settings.connect_timeout_ms / 1000)
            self._client = httpx.AsyncClient(
                base_url=settings.base_url or "", timeout=timeout, trust_env=False, follow_redirects=False
            )
            self._http = HttpBeatProvider(self._client, clock, settings.max_skew_ms, BarShape.of(self.schedule))

    def describe(self) -> str:
        s = self.settings
        if s.mode == "http":
            return f"BACKBEAT at {s.base_url} (the frame in progress)"
        shares = "/".join(str(x) for x in (s.plan, s.work, s.review, s.reverb))
        return (
            f"embedded schedule: {s.tempo_bpm} bpm, {s.beats_per_bar} beats per bar, plan/work/review/reverb "
            f"{shares} {'%' if s.share_unit == 'percent' else 'beats'} of the bar"
        )

    async def windows(self) -> dict[str, Any]:
        """`{"now_ms", "source", "window_id", "phase", "classes": {class: {...}}, "error"}`."""
        now = self.clock()
        out: dict[str, Any] = {"now_ms": now, "source": self.describe(), "error": None}
        if self._http is None:
            frame = self.schedule.frame(now)
            out.update(window_id=frame.window_id, phase=frame.phase, classes={})
            for cls in PHASES:
                wid, start, end = self.schedule.next_open(cls, now)
                out["classes"][cls] = {
                    "window_id": wid, "open": start <= now < end, "opens_at_ms": start, "closes_at_ms": end
                }  # fmt: skip
            return out
        polled = await self._http.beat(now)
        if polled is None:
            out.update(window_id=None, phase=None, classes={}, error=self._http.last_error or "no frame")
            return out
        out.update(window_id=polled.window_id, phase=polled.phase, classes={})
        for cls in PHASES:
            is_open = cls == polled.phase and now < polled.deadline_at_ms
            out["classes"][cls] = {
                "window_id": polled.window_id if is_open else None,
                "open": is_open,
                "opens_at_ms": polled.received_at_ms if is_open else None,
                "closes_at_ms": polled.deadline_at_ms if is_open else None,
            }
        return out

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
