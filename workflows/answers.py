"""The contract's answers: accepted (202), duplicate (202) and rejected (400)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from swoosh.workflows.errors import ProposalError, RejectionCode, clip_text

# An answer names at most this many reasons per guard (a policy scan may find a breach in every
# one of hundreds of strings); the decision record keeps them all.
GUARD_REASONS_SHOWN = 32

# SWOOSH-Go's answer keys ride beside the contract's own in every answer (additive): `success`,
# `state_hash` (the project's head after the call) and `quarantined` (whether it is QUARANTINED then).
GO_KEYS = ("success", "state_hash", "quarantined")


class GuardResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    guard: str
    ok: bool
    reasons: list[str] = Field(default_factory=list)

    @field_validator("reasons")
    @classmethod
    def _clipped(cls, reasons: list[str]) -> list[str]:
        shown = [clip_text(r) for r in reasons[:GUARD_REASONS_SHOWN]]
        if len(reasons) > GUARD_REASONS_SHOWN:
            shown.append(f"… and {len(reasons) - GUARD_REASONS_SHOWN} more")
        return shown


class Accepted(BaseModel):
    """202: applied now (`duplicate=false`) or earlier under the same idem_key (`duplicate=true`).

    `state_hash` is the head after the call: `state_post_hash` for a fresh answer, the current head
    for a duplicate (the head may have moved on since the original).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    success: bool = True
    state_hash: str = ""
    quarantined: bool = False

    accepted: bool = True
    duplicate: bool = False
    project_id: str
    transition: str
    index: int
    state_pre_hash: str
    state_post_hash: str
    hlc: str
    idem_key: str
    decision_record: dict[str, Any] | None
    dr_hash: str
    guards: list[GuardResult] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _head_after(cls, data: Any) -> Any:
        # Answers recorded before SWOOSH-Go's keys existed (and fresh ones built without it) say the
        # head after the call is the state they produced.
        if isinstance(data, dict) and not data.get("state_hash") and data.get("state_post_hash"):
            return {**data, "state_hash": data["state_post_hash"]}
        return data


class Rejected(BaseModel):
    """400: nothing changed; `error` is one of the contract's stable codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    success: bool = False
    state_hash: str | None = None
    quarantined: bool = False
    accepted: bool = False
    error: RejectionCode
    reason: str
    failing_guard: str | None = None
    guards: list[GuardResult] = Field(default_factory=list)
    head_hash: str

    @field_validator("reason")
    @classmethod
    def _clipped(cls, reason: str) -> str:
        return clip_text(reason)

    @model_validator(mode="before")
    @classmethod
    def _head_after(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("state_hash") is None and data.get("head_hash") is not None:
            return {**data, "state_hash": data["head_hash"]}
        return data

    @classmethod
    def of(
        cls, err: ProposalError, head_hash: str, guards: list[GuardResult] | None = None, quarantined: bool = False
    ) -> Rejected:
        return cls(
            error=err.code,
            reason=err.reason,
            failing_guard=err.failing_guard,
            guards=guards or [],
            head_hash=head_hash,
            quarantined=quarantined,
        )


class DryRunAnswer(BaseModel):
    """200 to `?dry_run=true`: what a real send of the same body would be answered now; nothing changed.

    `accepted` with `state_post_hash` (and `index`) as they would be; or the rejection's `error`,
    `reason`, `failing_guard` and `guards`. `head_hash` is the head the proposal was tried on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    dry_run: bool = True
    accepted: bool
    duplicate: bool = False
    error: RejectionCode | None = None
    reason: str | None = None
    failing_guard: str | None = None
    guards: list[GuardResult] = Field(default_factory=list)
    state_post_hash: str | None = None
    index: int | None = None
    head_hash: str | None

    @classmethod
    def would_accept(cls, answer: Accepted, head_hash: str) -> DryRunAnswer:
        return cls(
            accepted=True,
            duplicate=answer.duplicate,
            guards=answer.guards,
            state_post_hash=answer.state_post_hash,
            index=answer.index,
            head_hash=head_hash,
        )

    @classmethod
    def would_reject(cls, rejected: Rejected) -> DryRunAnswer:
        return cls(
            accepted=False,
            error=rejected.error,
            reason=rejected.reason,
            failing_guard=rejected.failing_guard,
            guards=rejected.guards,
            head_hash=rejected.head_hash,
        )


class IdemEntry(BaseModel):
    """What the idempotency window remembers of an applied proposal (compact: it rides in snapshots)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    idem_key: str
    signer: str
    transition: str
    inputs_hash: str
    index: int
    hlc: str
    state_pre_hash: str
    state_post_hash: str
    dr_hash: str
