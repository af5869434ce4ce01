"""Payloads crossing the Temporal boundary: workflow input (the snapshot), activity inputs, query answers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from swoosh.guards.context import GuardContext
from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.engine import EngineSnapshot
from swoosh.workflows.proposal import ProposalRequest

WORKFLOW_NAME = "ProjectLifecycle"
UPDATE_TRANSITION = "transition"
UPDATE_DRY_RUN = "dry_run"
# A secret-free request to quarantine for a secret-bearing proposal that was refused before it was sent.
UPDATE_QUARANTINE = "quarantine_for_secret"
SIGNAL_PROPOSE = "propose"
SIGNAL_SNAPSHOT = "snapshot"
QUERY_STATE = "state"
QUERY_HEAD = "head"
QUERY_HEALTH = "health"
QUERY_DECISIONS = "decisions"
QUERY_REJECTIONS = "rejections"
QUERY_RECEIPTS = "receipts"
QUERY_ANSWER = "answer"
QUERY_SEEN = "seen"  # the idempotency window's entry for a key (migration: who owns it)
REJECTION_ERROR_TYPE = "SwooshRejected"
# An Update turned away before it was accepted (nothing written); resending it is always safe.
RETRY_LATER_ERROR_TYPE = "SwooshRetryLater"
# A dry run answered by the Update validator (nothing written): the failure carries the DryRunAnswer.
DRY_RUN_ANSWER_TYPE = "SwooshDryRunAnswer"
# An Update accepted but not decided: its guards could not be evaluated (the guard activity failed
# after its retries). Nothing was applied; resend it later (the API answers 503 + Retry-After).
UNAVAILABLE_ERROR_TYPE = "SwooshUnavailable"
# The rejection log's word for a Signal-path proposal left undecided for the same reason.
UNAVAILABLE_LOG_ERROR = "unavailable"
ACTIVITY_GUARDS = "swoosh.evaluate_guards"
ACTIVITY_DELIVER = "swoosh.deliver_decisions"
# A decision-record store refuses a batch: it holds another record at an index (fork), lacks the
# record before the batch (gap), or refused it otherwise. Non-retryable; the workflow reports it.
SINK_FORK_ERROR_TYPE = "DecisionChainFork"
SINK_GAP_ERROR_TYPE = "DecisionChainGap"
SINK_REFUSED_ERROR_TYPE = "SinkRefused"
SINK_REFUSAL_TYPES = (SINK_FORK_ERROR_TYPE, SINK_GAP_ERROR_TYPE, SINK_REFUSED_ERROR_TYPE)


class LifecycleSettings(BaseModel):
    """How the workflow snapshots and delivers; carried across continue-as-new."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot_every: int = Field(default=500, ge=1, le=1800)
    # Execution_NextWindow (REVERB -> PLAN) is a snapshot point once this many transitions were
    # applied since the last snapshot (1 = every REVERB). Each snapshot rewrites the whole state,
    # idempotency window and retained records into history: in a tight EXECUTION loop a snapshot
    # at every REVERB would cost far more history and time than the transitions themselves.
    reverb_snapshot_min: int = Field(default=100, ge=1, le=1800)
    dr_batch: int = Field(default=64, ge=1, le=512)
    dr_flush_ms: int = Field(default=1000, ge=0)
    dr_retain: int = Field(default=128, ge=0, le=1024)
    # New transitions are turned away (retry later, nothing written) while this many decision records
    # wait for the sink: undelivered records ride in every snapshot, and a snapshot larger than
    # Temporal's 2 MB payload limit would fail the workflow. ~1.1 KB each: 512 keep it under 0.6 MB.
    dr_backlog_max: int = Field(default=512, ge=1, le=1024)
    # The same limits in bytes (canonical JSON of the records). A record is about 1.1 KB, but one
    # carrying 64 evidence references of 512 characters is about 33 KB: counts alone would let the
    # snapshot (idempotency window ~0.9 MB at most + records) or a delivery batch pass Temporal's
    # 2 MB payload limit, and a workflow task that cannot complete leaves the project stuck.
    dr_batch_bytes: int = Field(default=256 * 1024, ge=4096, le=1024 * 1024)
    dr_retain_bytes: int = Field(default=128 * 1024, ge=0, le=512 * 1024)
    dr_backlog_bytes: int = Field(default=256 * 1024, ge=4096, le=512 * 1024)
    rejection_log: int = Field(default=100, ge=1, le=1000)
    # Each of the guard activity's three attempts; past the last, the proposal is left undecided.
    guard_timeout_ms: int = Field(default=10_000, ge=100, le=60_000)
    deliver_timeout_ms: int = Field(default=30_000, ge=100)
    # Where callers (and the Temporal UI) reach the SWOOSH API: the workflow's current details link to
    # the project's live statechart there. Only text in the UI; None (projects started before it) = no link.
    api_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://[^\s/]+(/\S*)?$")


class RejectionLogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    idem_key: str | None
    transition: str | None
    error: str
    reason: str
    failing_guard: str | None
    at_index: int


class DeliveryRefusal(BaseModel):
    """The decision-record store refused the oldest undelivered records: they stay in the workflow.

    `kind`: `fork` (the store holds another record at `index`), `gap` (it lacks the record before),
    `refused` (another refusal, e.g. an acknowledgement short of the batch). Cleared by the next
    delivery the store accepts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    index: int | None = None
    reason: str
    at_index: int  # the head when the store refused


class LifecycleInput(BaseModel):
    """The snapshot a run starts from: Temporal history after it is the write-ahead log."""

    model_config = ConfigDict(extra="forbid")

    snapshot: EngineSnapshot
    settings: LifecycleSettings = Field(default_factory=LifecycleSettings)
    undelivered: list[dict[str, Any]] = Field(default_factory=list)
    retained: list[dict[str, Any]] = Field(default_factory=list)  # newest records, for the decisions query
    inbox: list[ProposalRequest] = Field(default_factory=list)
    rejections: list[RejectionLogEntry] = Field(default_factory=list)
    snapshot_index: int = 0
    snapshot_hlc: str | None = None
    runs: int = 0
    # Snapshot receipts (workflows/receipts.py): made at continue-as-new, still to be signed and stored;
    # and the newest ones stored, for the receipts query.
    receipts: list[dict[str, Any]] = Field(default_factory=list)
    receipts_stored: list[dict[str, Any]] = Field(default_factory=list)
    refusal: DeliveryRefusal | None = None  # the store's last refusal, still standing
    # When the project entered RECOVERY / QUARANTINED (HLC wall ms), for swoosh_recovery_time_seconds.
    entered: dict[str, int] = Field(default_factory=dict)


class GuardRequest(BaseModel):
    """Ask the guard activity to evaluate a transition's guards over cached facts."""

    model_config = ConfigDict(extra="forbid")

    guards: list[str]
    state: dict[str, Any]
    inputs: dict[str, Any]
    context: GuardContext
    now_ms: int


class GuardResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcomes: list[GuardOutcome]


class DeliveryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    records: list[dict[str, Any]]
    # Snapshot receipts to sign and store with the records (workflows/receipts.py), unsigned here.
    receipts: list[dict[str, Any]] = Field(default_factory=list)


class DeliveryResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivered: int
    skipped: int
    last_index: int
    receipts: list[dict[str, Any]] = Field(default_factory=list)  # the request's receipts, as signed and stored


class StateView(BaseModel):
    """GET /state: the whole document, or a projection of named sections."""

    model_config = ConfigDict(extra="forbid")

    project_id: str
    hash: str
    index: int
    hlc_last: str | None
    phase: dict[str, str | None]
    projection: dict[str, Any]


class HeadView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    hash: str
    index: int
    hlc_last: str | None
    top: str


class HealthView(BaseModel):
    """GET /health: `walLag` is accepted transitions since the last snapshot (continue-as-new)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    status: str
    consensus: dict[str, Any]
    lastSnapshotHLC: str | None
    walLag: int
    index: int
    undelivered: int
    delivered_index: int
    inbox: int
    runs: int
    top: str
    license: str
    quarantined: bool
    delivery_refused: DeliveryRefusal | None = None


class AnswerView(BaseModel):
    """The `answer` query: what the project answers a proposal from its state alone, applying nothing.

    A duplicate's original answer (`accepted`), a rejection (`rejected`), or neither: deciding it
    would need the run (guards, a write). Used for a closed run, which takes no Update.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    accepted: Accepted | None = None
    rejected: Rejected | None = None


class DecisionsPage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: str
    records: list[dict[str, Any]]
    first_retained_index: int | None
    head_index: int


class SecretQuarantine(BaseModel):
    """Quarantine the project for a proposal that carried a secret (SHHH built-in rule) and was never sent.

    Sent by the client side (`lifecycle.client`, hence the API) instead of the proposal: it names the
    rules and places and who proposed what, never the secret. Applied as a `swoosh:system`
    `Policy_Quarantine`; a project already QUARANTINED (a resend) is left as it is.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    breaches: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] = Field(min_length=1, max_length=16)
    transition: str | None = Field(default=None, max_length=64)
    signer: str | None = Field(default=None, max_length=128)
    idem_key: str | None = Field(default=None, max_length=256)
