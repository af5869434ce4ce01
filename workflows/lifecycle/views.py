"""What the workflow's queries answer, built from the engine and the outbox (pure: no Temporal import)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.document import phases, projection_sections
from swoosh.workflows.engine import Engine
from swoosh.workflows.errors import REASON_CHARS, ProposalError
from swoosh.workflows.lifecycle.outbox import Outbox
from swoosh.workflows.messages import (
    AnswerView,
    DecisionsPage,
    DeliveryRefusal,
    HeadView,
    HealthView,
    RejectionLogEntry,
    SecretQuarantine,
    StateView,
)
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.secrets import breach_outcome
from swoosh.workflows.statechart import SECTIONS

# Reasons can quote a caller's text (a malformed hlc, say); a signal's body may be megabytes.
REJECTION_REASON_CHARS = REASON_CHARS
REJECTION_IDEM_KEY_CHARS = 256
REJECTION_TRANSITION_CHARS = 64


def state_view(engine: Engine, projection: list[str] | None) -> StateView:
    """GET /state: the whole document, or the named sections (ValueError for unknown names)."""
    return document_view(engine.document, engine.head_hash, projection)


def document_view(doc: dict[str, Any], head_hash: str, projection: list[str] | None) -> StateView:
    """The `/state` shape of any document (the head, or a past state); ValueError for unknown sections."""
    wanted = projection_sections(projection)
    shown = doc if wanted is None else {k: doc[k] for k in SECTIONS if k in wanted}
    return StateView(
        project_id=str(doc["meta"]["project_id"]),
        hash=head_hash,
        index=int(doc["meta"]["index"]),
        hlc_last=doc["hlc_last"],
        phase=phases(doc),  # top, boot, the regions, execution and the licence grace region
        projection=shown,
    )


def head_view(engine: Engine) -> HeadView:
    return HeadView(
        project_id=engine.project_id,
        hash=engine.head_hash,
        index=engine.index,
        hlc_last=engine.document["hlc_last"],
        top=engine.top,
    )


def health_view(
    engine: Engine,
    outbox: Outbox,
    *,
    consensus: dict[str, Any],
    snapshot_index: int,
    snapshot_hlc: str | None,
    inbox: int,
    runs: int,
    refusal: DeliveryRefusal | None = None,
) -> HealthView:
    doc, top = engine.document, engine.top
    lic = doc["control"]["license"]["phase"]
    if top == "TERMINATED":
        status = "down"
    elif top in ("QUARANTINED", "RECOVERY") or lic != "OK" or outbox.behind() or refusal is not None:
        status = "degraded"
    else:
        status = "ok"
    return HealthView(
        status=status,
        consensus=consensus,
        lastSnapshotHLC=snapshot_hlc,
        walLag=engine.index - snapshot_index,
        index=engine.index,
        undelivered=len(outbox.undelivered),
        delivered_index=outbox.delivered_index,
        inbox=inbox,
        runs=runs,
        top=top,
        license=lic,
        quarantined=bool(doc["policy"]["quarantined"]),
        delivery_refused=refusal,
    )


def decisions_page(engine: Engine, outbox: Outbox, after_index: int, limit: int) -> DecisionsPage:
    """A page of the records the run still holds (older ones: the decision-record store)."""
    return DecisionsPage(
        project_id=engine.project_id,
        records=outbox.page(after_index, limit),
        first_retained_index=outbox.first_retained_index(),
        head_index=engine.index,
    )


def answer_view(engine: Engine, req: ProposalRequest, now_ms: int) -> AnswerView:
    """A proposal's answer from admission alone: a duplicate's, a rejection's, or none (it would be decided)."""
    try:
        admitted = engine.admit(req, now_ms)
    except ProposalError as err:
        return AnswerView(rejected=Rejected.of(err, engine.head_hash))
    return AnswerView(accepted=admitted) if isinstance(admitted, Accepted) else AnswerView()


def rejection_log(entries: Iterable[RejectionLogEntry], size: int) -> deque[RejectionLogEntry]:
    """The Signal path's rejections, newest last, at most `size` (they ride in every snapshot)."""
    return deque(entries, maxlen=size)


def rejection_entry(req: ProposalRequest, rejected: Rejected, at_index: int) -> RejectionLogEntry:
    """What the rejection log keeps of a Signal-path rejection: clipped, since a body may be megabytes."""
    body = req.body if isinstance(req.body, dict) else {}
    return RejectionLogEntry(
        idem_key=clip(body.get("idem_key") or req.header_fields.get("idem_key"), REJECTION_IDEM_KEY_CHARS),
        transition=clip(body.get("transition"), REJECTION_TRANSITION_CHARS),
        error=rejected.error,
        reason=clip(rejected.reason, REJECTION_REASON_CHARS) or "",
        failing_guard=rejected.failing_guard,
        at_index=at_index,
    )


def log_entry(req: ProposalRequest, error: str, reason: str, at_index: int) -> RejectionLogEntry:
    """A Signal-path proposal refused or left undecided for a reason of SWOOSH's own (`error` outside
    the contract's codes: `unavailable`, its guards could not be evaluated; `inbox_full`)."""
    body = req.body if isinstance(req.body, dict) else {}
    return RejectionLogEntry(
        idem_key=clip(body.get("idem_key") or req.header_fields.get("idem_key"), REJECTION_IDEM_KEY_CHARS),
        transition=clip(body.get("transition"), REJECTION_TRANSITION_CHARS),
        error=error,
        reason=clip(reason, REJECTION_REASON_CHARS) or "",
        failing_guard=None,
        at_index=at_index,
    )


def refused_entry(req: SecretQuarantine, at_index: int, reason_chars: int) -> RejectionLogEntry:
    """What the rejection log keeps of a secret-bearing proposal refused before it reached the workflow."""
    reason = "; ".join(breach_outcome(list(req.breaches)).reasons)
    return RejectionLogEntry(
        idem_key=req.idem_key,
        transition=req.transition,
        error="guard_failed",
        reason=f"{reason} (refused before it reached the workflow)"[:reason_chars],
        failing_guard="policy",
        at_index=at_index,
    )


def clip(v: object, limit: int) -> str | None:
    """A caller's string, cut to `limit` characters; None for anything that is not a string."""
    if not isinstance(v, str):
        return None
    return v if len(v) <= limit else v[: limit - 1] + "…"
