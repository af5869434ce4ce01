"""Per-project admission: callers never meet Temporal's in-flight Update limit.

Temporal allows 10 Updates in flight per workflow and answers the 11th with RESOURCE_EXHAUSTED.
The API lets at most `max_in_flight` (default 8, leaving room for other API processes' retries and
operators) run per project, parks up to `max_waiting` more in FIFO order for at most `max_wait_s`,
and answers anything beyond that with 429 + Retry-After.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from swoosh.api.server.problems import OverloadedProblem

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_MAX_WAITING = 64
DEFAULT_MAX_WAIT_S = 10.0


@dataclass
class _Gate:
    semaphore: asyncio.Semaphore
    in_flight: int = 0
    waiting: int = 0


@dataclass
class Admission:
    """Bounded concurrency per project; entries disappear when a project goes idle."""

    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_waiting: int = DEFAULT_MAX_WAITING
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    retry_after_s: int = 1
    _gates: dict[str, _Gate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.max_in_flight <= 10:
            raise ValueError("max_in_flight must be 1..10 (Temporal allows 10 Updates in flight per workflow)")
        if self.max_waiting < 0:
            raise ValueError("max_waiting must be >= 0")

    def load(self, project_id: str) -> tuple[int, int]:
        """(in flight, waiting) for a project: for tests and diagnostics."""
        gate = self._gates.get(project_id)
        return (gate.in_flight, gate.waiting) if gate else (0, 0)

    @asynccontextmanager
    async def slot(self, project_id: str) -> AsyncIterator[None]:
        """Hold one of the project's in-flight slots; raise OverloadedProblem when the queue is full or too slow."""
        gate = self._gates.get(project_id)
        if gate is None:
            gate = self._gates[project_id] = _Gate(asyncio.Semaphore(self.max_in_flight))
        if gate.semaphore.locked() and gate.waiting >= self.max_waiting:
            self._forget_if_idle(project_id, gate)
            raise OverloadedProblem(
                f"project {project_id} has {gate.in_flight} transitions in flight and {gate.waiting} queued",
                self.retry_after_s,
            )
        gate.waiting += 1
        try:
            async with asyncio.timeout(self.max_wait_s):
                await gate.semaphore.acquire()
        except TimeoutError:
            gate.waiting -= 1
            self._forget_if_idle(project_id, gate)
            raise OverloadedProblem(
                f"project {project_id}: waited {self.max_wait_s:g} s for a slot", self.retry_after_s
            ) from None
        except BaseException:
            gate.waiting -= 1
            self._forget_if_idle(project_id, gate)
            raise
        gate.waiting -= 1
        gate.in_flight += 1
        try:
            yield
        finally:
            gate.in_flight -= 1
            gate.semaphore.release()
            self._forget_if_idle(project_id, gate)

    def _forget_if_idle(self, project_id: str, gate: _Gate) -> None:
        if gate.in_flight == 0 and gate.waiting == 0 and self._gates.get(project_id) is gate:
            del self._gates[project_id]
