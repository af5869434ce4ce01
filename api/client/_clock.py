"""The caller-side Hybrid Logical Clock: the send and receive rules of Kulkarni et al. (2014)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from swoosh.workflows.hlc import HLC


class HLCClock:
    """A caller-side HLC implementing the send and receive rules; thread-safe."""

    def __init__(self, physical_ms: Callable[[], int] | None = None) -> None:
        self._physical_ms = physical_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = HLC(0, 0)
        self._lock = threading.Lock()

    @property
    def last(self) -> HLC:
        return self._last

    def now(self) -> HLC:
        """Send rule: l' = max(l, pt); counter reset when the wall advanced, else incremented."""
        with self._lock:
            pt = self._physical_ms()
            wall = max(self._last.wall_ms, pt)
            counter = self._last.counter + 1 if wall == self._last.wall_ms else 0
            self._last = HLC(wall, counter)
            return self._last

    def observe(self, remote: HLC) -> HLC:
        """Receive rule: merge a remote timestamp so the next send is after it."""
        with self._lock:
            pt = self._physical_ms()
            wall = max(self._last.wall_ms, remote.wall_ms, pt)
            if wall == self._last.wall_ms and wall == remote.wall_ms:
                counter = max(self._last.counter, remote.counter) + 1
            elif wall == self._last.wall_ms:
                counter = self._last.counter + 1
            elif wall == remote.wall_ms:
                counter = remote.counter + 1
            else:
                counter = 0
            self._last = HLC(wall, counter)
            return self._last
