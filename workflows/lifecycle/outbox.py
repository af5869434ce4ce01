"""The decision-record outbox of one run: undelivered records, retained records, byte limits.

Pure (no Temporal import): the workflow adds each accepted transition's record, the delivery pump
takes batches from it and reports what the sink holds, the decisions query pages the retained
records. Undelivered and retained records ride in every snapshot, so both are limited in count and
in bytes: a snapshot over Temporal's 2 MB payload limit would leave the project stuck.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.messages import LifecycleSettings

# Above this many undelivered batches the project reports itself degraded (the sink is behind).
BEHIND_BATCHES = 4
MAX_PAGE = 1000


class Outbox:
    """Decision records between the engine and the sink.

    `byte_limits` is False only while replaying runs recorded before batches and retention were
    limited in bytes (a patch marker decides it): their batches were cut by count alone.
    """

    def __init__(
        self,
        settings: LifecycleSettings,
        undelivered: Iterable[dict[str, Any]],
        retained: Iterable[dict[str, Any]],
        head_index: int,
        *,
        byte_limits: bool = True,
    ) -> None:
        self.settings = settings
        self.byte_limits = byte_limits
        self.undelivered: list[dict[str, Any]] = list(undelivered)
        self.retained: deque[dict[str, Any]] = deque(retained, maxlen=settings.dr_retain)
        # Everything up to the oldest undelivered record (or the head, when none waits) is in the sink.
        self.delivered_index = min((int(r["index"]) for r in self.undelivered), default=head_index + 1) - 1
        self._sizes: dict[int, int] = {}  # index -> canonical JSON bytes (a memo; records never change)

    # ------------------------------------------------------------------ sizes
    def size(self, record: dict[str, Any]) -> int:
        index = int(record["index"])
        size = self._sizes.get(index)
        if size is None:
            size = self._sizes[index] = len(canonical_json(record))
        return size

    def bytes_of(self, records: Iterable[dict[str, Any]]) -> int:
        return sum(self.size(r) for r in records)

    # ------------------------------------------------------------------ the engine's side
    def add(self, record: dict[str, Any]) -> None:
        """A record of an accepted transition: to be delivered, and kept for the decisions query."""
        self.undelivered.append(record)
        self.retained.append(record)
        if self.byte_limits:
            retained = self.bytes_of(self.retained)
            while len(self.retained) > 1 and retained > self.settings.dr_retain_bytes:
                retained -= self.size(self.retained.popleft())  # older records: from the sink

    def backlog_reason(self) -> str | None:
        """Why new transitions must wait (back-pressure, not loss), or None while the sink keeps up."""
        backlog, size = len(self.undelivered), self.bytes_of(self.undelivered)
        if backlog >= self.settings.dr_backlog_max or size >= self.settings.dr_backlog_bytes:
            return (
                f"the decision-record sink is behind ({backlog} records, {size // 1024} KiB not yet "
                "delivered); resend later"
            )
        return None

    # ------------------------------------------------------------------ the pump's side
    def batch(self) -> list[dict[str, Any]]:
        """The next delivery: the oldest undelivered records, at most dr_batch and dr_batch_bytes (at least one)."""
        s = self.settings
        if not self.byte_limits:
            return self.undelivered[: s.dr_batch]
        batch: list[dict[str, Any]] = []
        total = 0
        for record in self.undelivered[: s.dr_batch]:
            total += self.size(record)
            if batch and total > s.dr_batch_bytes:
                break
            batch.append(record)
        return batch

    def batch_full(self) -> bool:
        """A full batch waits: deliver now rather than after the flush interval."""
        s = self.settings
        if len(self.undelivered) >= s.dr_batch:
            return True
        return self.byte_limits and self.bytes_of(self.undelivered) >= s.dr_batch_bytes

    def delivered(self, batch: list[dict[str, Any]], last_index: int) -> None:
        """The sink holds `batch` (and everything up to `last_index`)."""
        done = {r["index"] for r in batch}
        self.undelivered = [r for r in self.undelivered if r["index"] not in done]
        self.delivered_index = max(self.delivered_index, last_index)
        kept = {int(r["index"]) for r in self.undelivered} | {int(r["index"]) for r in self.retained}
        self._sizes = {i: n for i, n in self._sizes.items() if i in kept}

    # ------------------------------------------------------------------ reads
    def behind(self) -> bool:
        return len(self.undelivered) > BEHIND_BATCHES * self.settings.dr_batch

    def page(self, after_index: int, limit: int) -> list[dict[str, Any]]:
        """Retained records with index > after_index, oldest first, at most `limit` (capped)."""
        return [r for r in self.retained if r["index"] > after_index][: max(0, min(limit, MAX_PAGE))]

    def first_retained_index(self) -> int | None:
        return int(self.retained[0]["index"]) if self.retained else None
