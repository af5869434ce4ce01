"""HTTP shapes of the API that are not workflow messages: problems, rejections, project and page answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from swoosh.workflows.answers import GuardResult, Rejected
from swoosh.workflows.errors import RejectionCode, clip_text


class RejectionBody(Rejected):
    """400: a contract rejection. `head_hash` is null only when no project could be addressed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    head_hash: str | None  # type: ignore[assignment]

    @classmethod
    def of_answer(cls, rejected: Rejected) -> RejectionBody:
        return cls.model_validate(rejected.model_dump())

    @classmethod
    def schema_error(cls, reason: str, head_hash: str | None, quarantined: bool = False) -> RejectionBody:
        return cls(error="schema", reason=reason, head_hash=head_hash, quarantined=quarantined)


class Problem(BaseModel):
    """401 / 404 / 413 / 429 / 503 (and 500): a stable error word and a reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str = Field(
        examples=[
            "unauthorized",
            "not_found",
            "payload_too_large",
            "overloaded",
            "unavailable",
            "records_unavailable",
            "guards_unavailable",
        ]
    )
    reason: str

    @field_validator("reason")
    @classmethod
    def _clipped(cls, reason: str) -> str:
        return clip_text(reason)


class HealthDown(BaseModel):
    """503 from a health endpoint: Temporal cannot be reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = "down"
    consensus: dict[str, Any] | None = None
    lastSnapshotHLC: str | None = None
    walLag: int | None = None
    error: str = "unavailable"
    reason: str

    @field_validator("reason")
    @classmethod
    def _clipped(cls, reason: str) -> str:
        return clip_text(reason)


class Probe(BaseModel):
    """GET /livez and GET /readyz: `ok`/`ready`, or why not (503)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: str = Field(examples=["ok", "ready", "unready"])
    reason: str | None = None


class ProjectCreated(BaseModel):
    """PUT /v1/projects/{project_id}: 201 when created now, 200 when it already ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    workflow_id: str
    created: bool


class DecisionsAnswer(BaseModel):
    """GET /v1/projects/{project_id}/decisions: records with index > after_index, oldest first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    records: list[dict[str, Any]]
    head_index: int
    first_retained_index: int | None = Field(
        description="oldest record the workflow still holds; older ones come from the sink"
    )
    next_after_index: int = Field(description="pass as after_index to read the next page")


class Receipt(BaseModel):
    """A signed Merkle root over one snapshot interval's decision records (docs/api.md#signed-receipts)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str = Field(examples=["swoosh.receipt.v1"])
    project_id: str
    from_index: int
    to_index: int
    merkle_root: str
    signer: str | None = Field(description="the receipt key's id, hmmm:pubkey:…; null while not yet signed")
    signature: str | None


class ReceiptsAnswer(BaseModel):
    """GET /v1/projects/{project_id}/receipts: every receipt, by interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    receipts: list[Receipt]


class WindowClassView(BaseModel):
    """One BACKBEAT window class: open now (until `closes_at_ms`), or when it opens next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_id: str | None = Field(description="the window to name in a proposal (null: not known ahead, http mode)")
    open: bool
    opens_at_ms: int | None
    closes_at_ms: int | None
    opens_in_ms: int | None = Field(description="0 while open")
    closes_in_ms: int | None


class NextWindowed(BaseModel):
    """The project's next window-gated transition and its window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transition: str
    window_class: str
    window_id: str | None
    open: bool
    opens_in_ms: int | None
    closes_in_ms: int | None


class WindowsAnswer(BaseModel):
    """GET /v1/projects/{project_id}/window: BACKBEAT now, per window class, and what the project needs next."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_id: str
    now_ms: int
    source: str = Field(description="where the table comes from: the embedded schedule, or a BACKBEAT frame")
    window_id: str | None = Field(description="the window (bar) in progress")
    phase: str | None = Field(description="the window class open now: plan, work, review or reverb")
    classes: dict[str, WindowClassView]
    gates: dict[str, str] = Field(description="which window class gates which transition (the statechart's `window`)")
    next: NextWindowed | None = Field(description="the project's next gated transition; null outside EXECUTION")
    error: str | None = None


class ProposalEnvelope(BaseModel):
    """The proposal body of docs/contract.md (documentation only: the API reads the body as sent)."""

    model_config = ConfigDict(extra="forbid")

    project_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    current_state_hash: str = Field(pattern=r"^sha256-[0-9a-f]{64}$")
    transition: str = Field(examples=["Boot_ConfigOk"])
    inputs: dict[str, Any] = Field(default_factory=dict)
    inputs_hash: str = Field(pattern=r"^sha256-[0-9a-f]{64}$")
    signer: str = Field(pattern=r"^hmmm:pubkey:[A-Za-z0-9_-]{43}$")
    idem_key: str | None = Field(default=None, description="or header Idempotency-Key")
    hlc: str | None = Field(default=None, max_length=64, description="YYYY-MM-DDTHH:MM:SS.mmm+00:00#N, or header X-HLC")
    window_id: str | None = Field(default=None, description="or header X-Window-Id")
    evidence: list[str] = Field(default_factory=list)
    signature: str = Field(
        max_length=128, description="Ed25519 over the canonical JSON of the body as sent, without signature"
    )


__all__ = [
    "DecisionsAnswer",
    "GuardResult",
    "HealthDown",
    "NextWindowed",
    "Probe",
    "Problem",
    "ProjectCreated",
    "ProposalEnvelope",
    "Receipt",
    "ReceiptsAnswer",
    "RejectionBody",
    "RejectionCode",
    "WindowClassView",
    "WindowsAnswer",
]
