"""The Signal path's inbox: proposals waiting for the run loop, bounded in bytes (pure: no Temporal import).

Queued proposals ride in every snapshot (continue-as-new input) until the run loop decides them, so
what callers can queue is bounded: a proposal that would take the inbox past its limit is refused
and logged in the rejection log (`inbox_full`), never queued.
"""

from __future__ import annotations

from collections.abc import Iterable

from swoosh.workflows.proposal import ProposalRequest

INBOX_FULL = "inbox_full"


def size_of(req: ProposalRequest) -> int:
    """What a proposal adds to a snapshot: its JSON as the payload converter writes it."""
    return len(req.model_dump_json())


class Inbox:
    """Proposals in arrival order; `limit` bytes at most (None: unbounded, as runs recorded before it)."""

    def __init__(self, items: Iterable[ProposalRequest], limit: int | None) -> None:
        self.limit = limit
        self.items: list[ProposalRequest] = list(items)
        self._sizes = [size_of(r) for r in self.items] if limit is not None else []
        self.bytes = sum(self._sizes)

    def __len__(self) -> int:
        return len(self.items)

    def offer(self, req: ProposalRequest) -> str | None:
        """Queue `req`; or, when it would not fit, the reason it was refused (nothing queued)."""
        if self.limit is None:
            self.items.append(req)
            return None
        size = size_of(req)
        if self.bytes + size > self.limit:
            return (
                f"the signal inbox holds {self.bytes} bytes of proposals waiting and takes at most {self.limit}; "
                f"this one is {size}: resend it later, or as an Update (POST …/transition)"
            )
        self.items.append(req)
        self._sizes.append(size)
        self.bytes += size
        return None

    def pop(self) -> ProposalRequest:
        """The oldest proposal, taken out."""
        if self._sizes:
            self.bytes -= self._sizes.pop(0)
        return self.items.pop(0)
