"""The engine's configuration and snapshot: the knobs that change decisions, carried in every snapshot.

A rule added after projects were running is a field here. A config built in code has the rule; a
snapshot serialized before the field existed reads as it was before (`RULES_BEFORE`), so recorded
histories replay and fold unchanged; a running project adopts the rules of `ADOPTED_AT_SNAPSHOT` at
its next snapshot (`adopt_rules`, asked behind a patch marker by the workflow).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from swoosh.guards.policy import LATEST_RULES_VERSION
from swoosh.workflows.answers import IdemEntry
from swoosh.workflows.decision import UcxlFormat


class EngineConfig(BaseModel):
    """Knobs that change decisions; carried in every snapshot so replays decide identically."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_offset_ms: int = Field(default=60_000, ge=0)
    idem_window: int = Field(default=1024, ge=16, le=4096)
    grace_ms: int = Field(default=900_000, ge=0)
    # The built-in SHHH rules the workflow scans every proposal with and the engine redacts records
    # with (guards/policy.py). 1 for snapshots from before the field existed, so they replay and fold
    # unchanged; new projects start with the newest (`new_engine_config()`).
    secret_rules: int = Field(default=1, ge=1, le=LATEST_RULES_VERSION)
    # New projects write CHORUS-grammar backlinks. A snapshot recorded before this field existed has
    # no value for it and reads as "legacy" (see EngineSnapshot), so its records recompute unchanged.
    ucxl_backlink: UcxlFormat = "chorus"
    # Rules that came after projects were already running. A config built in code has them; a
    # snapshot serialized before a rule existed has no value for it and reads as it was before
    # (`RULES_BEFORE`), so its history replays and folds unchanged. Such a project adopts them at its
    # next snapshot (`adopt_rules`, behind a patch marker in the workflow).
    identity_rotation: bool = True  # Identity_Rotate is a transition of the project
    election_epoch: bool = True  # a vote names the election epoch it is cast in (guards/council.py)
    state_limits: bool = True  # the document's byte budget and the caps on what it copies (limits.py)
    # The built-in secret scan skips signer ids and vote/approval signatures (guards.policy.signed_material):
    # before, a random signature could match a key pattern by chance and quarantine the project.
    signed_fields_exempt: bool = True

    def adopt_rules(self) -> EngineConfig:
        """This config with every rule of `ADOPTED_AT_SNAPSHOT` as new projects have it."""
        return self.model_copy(update={k: EngineConfig.model_fields[k].default for k in ADOPTED_AT_SNAPSHOT})


# What each rule was before it existed, for snapshots serialized without it.
RULES_BEFORE: dict[str, Any] = {
    "ucxl_backlink": "legacy",
    "identity_rotation": False,
    "election_epoch": False,
    "state_limits": False,
    "signed_fields_exempt": False,
}
# The rules a running project adopts at its next snapshot: security fixes that must reach it.
ADOPTED_AT_SNAPSHOT = ("identity_rotation", "election_epoch", "state_limits", "signed_fields_exempt")


def new_engine_config(**knobs: int) -> EngineConfig:
    """The config a new project starts with: the given knobs, and the newest built-in rules."""
    return EngineConfig(**{"secret_rules": LATEST_RULES_VERSION, **knobs})


class EngineSnapshot(BaseModel):
    """Everything needed to resume an engine: document, idempotency window, DR chain head."""

    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any]
    idem: list[IdemEntry] = Field(default_factory=list)
    dr_head: str | None = None
    config: EngineConfig = Field(default_factory=EngineConfig)

    @model_validator(mode="before")
    @classmethod
    def _recorded_before(cls, data: Any) -> Any:
        # A config read from a serialized snapshot (a dict) keeps the rules it was recorded with.
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            missing = {k: v for k, v in RULES_BEFORE.items() if k not in data["config"]}
            if missing:
                return {**data, "config": {**missing, **data["config"]}}
        return data


__all__ = ["ADOPTED_AT_SNAPSHOT", "RULES_BEFORE", "EngineConfig", "EngineSnapshot", "new_engine_config"]
