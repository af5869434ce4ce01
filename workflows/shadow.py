"""A project's migration ledger: who owns each idempotency key, the legacy system's accepted mutations
SWOOSH has yet to apply, and where the two systems disagreed. Pure; held by the `ShadowLedger` workflow.

Ownership makes idempotency hold across mode switches: the first system a key is sent to owns it.
A key claimed for the legacy system before it was forwarded there is forwarded again on every resend,
in any mode (the legacy system answers its repeat), so SWOOSH never decides it a second time; a key
SWOOSH decided is in the project's own idempotency window and is never forwarded.

Everything is bounded: the newest `CLAIMS_KEEP` claims, a journal of at most `JOURNAL_MAX` entries and
`JOURNAL_BYTES` bytes (an entry beyond that is counted and reported, not kept), the newest
`DIVERGENCES_KEEP` divergences, and counters keyed by transition names (a fixed set).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.statechart import default_statechart

CLAIMS_KEEP = 2048
JOURNAL_MAX = 256
JOURNAL_BYTES = 256 * 1024
DIVERGENCES_KEEP = 200
REASON_CHARS = 300

DivergenceKind = Literal["decision", "state", "catch_up", "unapplied"]


def known_transition(name: str) -> str:
    """A transition name as a counter key: names outside the statechart all count as `unknown`."""
    return name if name in default_statechart().transitions else "unknown"


class Claim(BaseModel):
    """An idempotency key the legacy system owns, and what became of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idem_key: str
    transition: str
    at_ms: int
    legacy_status: int | None = None  # the legacy system's HTTP status, once it answered
    legacy_accepted: bool | None = None
    swoosh: str | None = None  # applied / rejected:<code> / would_accept / would_reject:<code> / journaled / …


class JournalEntry(BaseModel):
    """A mutation the legacy system accepted that SWOOSH has not applied yet (bypass, or SWOOSH was down).

    Holds the legacy body and header fields as sent, and who may complete it (a gateway delegation)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = 0
    idem_key: str
    transition: str
    body: dict[str, Any]
    header_fields: dict[str, str] = Field(default_factory=dict)
    token_label: str | None = None
    signer: str | None = None
    at_ms: int = 0


class Divergence(BaseModel):
    """One disagreement: the decisions (or the regions' phases) of the two systems for one mutation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at_ms: int = 0
    idem_key: str
    transition: str
    kind: DivergenceKind
    mode: str
    legacy: str  # what the legacy system did: accepted / rejected (HTTP status) / its phase
    swoosh: str  # what SWOOSH did or would do
    regions: dict[str, list[str | None]] = Field(default_factory=dict)  # phase: [legacy, swoosh]
    reason: str = Field(default="", max_length=REASON_CHARS)


class Settlement(BaseModel):
    """What the API learned about a claimed key: both answers, the comparison, a journal entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idem_key: str
    transition: str
    legacy_status: int
    legacy_accepted: bool
    swoosh: str | None = None
    compared: bool = False
    divergences: list[Divergence] = Field(default_factory=list)
    journal: JournalEntry | None = None


class CatchUp(BaseModel):
    """Journal entries SWOOSH has now applied (or refused), in order, with what it found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    through_seq: int
    outcomes: dict[str, str] = Field(default_factory=dict)  # idem_key -> swoosh result
    divergences: list[Divergence] = Field(default_factory=list)


class Lookup(BaseModel):
    """A key's claim (if the legacy system owns it) and how many journal entries wait for SWOOSH."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    claim: Claim | None
    pending: int
    dropped: int


class ShadowReport(BaseModel):
    """`GET /v1/projects/{id}/shadow`: counters and the newest divergences, newest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    compared: dict[str, int]
    diverged: dict[str, int]
    by_kind: dict[str, int]
    claims: int
    pending: int
    dropped: int
    divergences: list[Divergence]


class LedgerState(BaseModel):
    """The ledger: claims (oldest first), the journal, divergences, counters."""

    model_config = ConfigDict(extra="forbid")

    project_id: str
    claims: list[Claim] = Field(default_factory=list)
    journal: list[JournalEntry] = Field(default_factory=list)
    next_seq: int = 1
    dropped: int = 0
    divergences: list[Divergence] = Field(default_factory=list)
    compared: dict[str, int] = Field(default_factory=dict)
    diverged: dict[str, int] = Field(default_factory=dict)
    by_kind: dict[str, int] = Field(default_factory=dict)

    def _index(self) -> dict[str, int]:
        return {c.idem_key: i for i, c in enumerate(self.claims)}

    def lookup(self, idem_key: str) -> Lookup:
        pos = self._index().get(idem_key)
        claim = self.claims[pos] if pos is not None else None
        return Lookup(claim=claim, pending=len(self.journal), dropped=self.dropped)

    def claim(self, idem_key: str, transition: str, at_ms: int) -> tuple[Claim, bool]:
        """The key's claim, made now if there was none (True); the oldest claims fall out beyond CLAIMS_KEEP."""
        pos = self._index().get(idem_key)
        if pos is not None:
            return self.claims[pos], False
        made = Claim(idem_key=idem_key, transition=transition, at_ms=at_ms)
        self.claims = [*self.claims, made][-CLAIMS_KEEP:]
        return made, True

    def settle(self, s: Settlement, at_ms: int) -> None:
        pos = self._index().get(s.idem_key)
        claim = (
            self.claims[pos] if pos is not None else Claim(idem_key=s.idem_key, transition=s.transition, at_ms=at_ms)
        )
        settled = claim.model_copy(
            update={"legacy_status": s.legacy_status, "legacy_accepted": s.legacy_accepted, "swoosh": s.swoosh}
        )
        if pos is None:
            self.claims = [*self.claims, settled][-CLAIMS_KEEP:]
        else:
            self.claims[pos] = settled
        if s.compared:
            key = known_transition(s.transition)
            self.compared[key] = self.compared.get(key, 0) + 1
        for d in s.divergences:
            self._diverged(d, at_ms)
        if s.journal is not None:
            self._journal(s.journal, at_ms)

    def caught_up(self, c: CatchUp, at_ms: int) -> None:
        done = [e for e in self.journal if e.seq <= c.through_seq]
        self.journal = [e for e in self.journal if e.seq > c.through_seq]
        index = self._index()
        for entry in done:
            pos = index.get(entry.idem_key)
            if pos is not None and entry.idem_key in c.outcomes:
                self.claims[pos] = self.claims[pos].model_copy(update={"swoosh": c.outcomes[entry.idem_key]})
        for d in c.divergences:
            self._diverged(d, at_ms)

    def _journal(self, entry: JournalEntry, at_ms: int) -> None:
        size = sum(len(canonical_json(e.model_dump())) for e in self.journal)
        new = entry.model_copy(update={"seq": self.next_seq, "at_ms": at_ms})
        if len(self.journal) >= JOURNAL_MAX or size + len(canonical_json(new.model_dump())) > JOURNAL_BYTES:
            self.dropped += 1
            reason = f"journal full ({JOURNAL_MAX} entries / {JOURNAL_BYTES} bytes): SWOOSH cannot catch up on it"
            self._diverged(
                Divergence(
                    idem_key=entry.idem_key,
                    transition=entry.transition,
                    kind="unapplied",
                    mode="bypass",
                    legacy="accepted",
                    swoosh="not journaled",
                    reason=reason,
                ),
                at_ms,
            )
            return
        self.next_seq += 1
        self.journal = [*self.journal, new]

    def _diverged(self, d: Divergence, at_ms: int) -> None:
        key = known_transition(d.transition)
        self.diverged[key] = self.diverged.get(key, 0) + 1
        self.by_kind[d.kind] = self.by_kind.get(d.kind, 0) + 1
        stamped = d.model_copy(update={"at_ms": at_ms, "reason": d.reason[:REASON_CHARS]})
        self.divergences = [*self.divergences, stamped][-DIVERGENCES_KEEP:]

    def report(self, limit: int = 50) -> ShadowReport:
        newest = list(reversed(self.divergences))[: max(0, min(limit, DIVERGENCES_KEEP))]
        return ShadowReport(
            project_id=self.project_id,
            compared=dict(sorted(self.compared.items())),
            diverged=dict(sorted(self.diverged.items())),
            by_kind=dict(Counter(self.by_kind)),
            claims=len(self.claims),
            pending=len(self.journal),
            dropped=self.dropped,
            divergences=newest,
        )
