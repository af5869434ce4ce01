"""The result of one guard: its name, whether it passed, and the reasons (which go into the DR)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class GuardOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    guard: str
    ok: bool
    reasons: tuple[str, ...] = Field(default_factory=tuple)

    def as_json(self) -> dict[str, Any]:
        return {"guard": self.guard, "ok": self.ok, "reasons": list(self.reasons)}


def passed(guard: str, *reasons: str) -> GuardOutcome:
    return GuardOutcome(guard=guard, ok=True, reasons=reasons)


def failed(guard: str, *reasons: str) -> GuardOutcome:
    return GuardOutcome(guard=guard, ok=False, reasons=reasons)
