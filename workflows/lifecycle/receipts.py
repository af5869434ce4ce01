"""The receipts of one run: the interval's record hashes, receipts still to sign and store, recent ones.

Pure (no Temporal import). The workflow notes each accepted record's `dr_hash`; at continue-as-new it
turns the interval into an unsigned receipt (`workflows/receipts.py`) that rides into the next run;
the delivery pump sends it with the next batch once its records are stored, and the delivery
activity signs it with the worker's receipt key. Both lists ride in every snapshot, so both are short:
one receipt is made per snapshot, and only the newest `KEEP` stored ones are kept for the query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from swoosh.workflows.receipts import unsigned_receipt

KEEP = 16


class ReceiptBook:
    """`enabled` is False while replaying runs recorded before receipts existed (a patch marker decides)."""

    def __init__(self, pending: Iterable[dict[str, Any]], stored: Iterable[dict[str, Any]], *, enabled: bool) -> None:
        self.enabled = enabled
        self.pending: list[dict[str, Any]] = list(pending)
        self.stored: list[dict[str, Any]] = list(stored)[-KEEP:]
        self.interval: list[tuple[int, str]] = []  # (index, dr_hash) of the records this run accepted

    def note(self, record: dict[str, Any]) -> None:
        self.interval.append((int(record["index"]), str(record["dr_hash"])))

    def close_interval(self, project_id: str) -> None:
        """At continue-as-new: the receipt of the records this run accepted (none: no receipt)."""
        if not self.enabled or not self.interval:
            return
        first = self.interval[0][0]
        hashes = [h for _, h in self.interval]
        self.pending.append(unsigned_receipt(project_id, first, hashes))
        self.interval = []

    def deliverable(self, stored_up_to: int) -> list[dict[str, Any]]:
        """Receipts whose records are all stored (up to `stored_up_to`): they go with the next delivery."""
        return [r for r in self.pending if int(r["to_index"]) <= stored_up_to]

    def delivered(self, signed: Iterable[dict[str, Any]]) -> None:
        """The store holds these (as signed by the delivery activity)."""
        done = {int(r["from_index"]): r for r in signed}
        self.pending = [r for r in self.pending if int(r["from_index"]) not in done]
        self.stored = (self.stored + sorted(done.values(), key=lambda r: int(r["from_index"])))[-KEEP:]

    def view(self) -> list[dict[str, Any]]:
        """Stored ones (newest KEEP) then pending ones, oldest first."""
        return [*self.stored, *self.pending]
