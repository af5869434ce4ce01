"""Migration from WHOOSH: the mode in force, who decides a transition under it, and its audited changes.

Pure: the control workflow (`lifecycle/migration.py`) holds a `MigrationState` and applies changes to
it; API replicas read the resulting `MigrationView` and route each mutation with `MigrationConfig`.

- `off`: SWOOSH decides everything; the legacy system is not contacted.
- `shadow`: the legacy system decides every mutation (the caller gets its answer); SWOOSH applies
  it too and records where the two disagree.
- `route`: transitions whose prefix (`Council` in `Council_QuorumCert`) is routed are decided by
  SWOOSH alone; the rest as in `shadow`. `*` routes every prefix.
- `bypass`: the legacy system decides every mutation; SWOOSH applies nothing (it catches up later).
"""

from __future__ import annotations

import functools
import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from swoosh.workflows.statechart import default_statechart

Mode = Literal["off", "shadow", "route", "bypass"]
MODES: tuple[Mode, ...] = ("off", "shadow", "route", "bypass")
ALL_PREFIXES = "*"
URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")
LABEL_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
AUDIT_KEEP = 100  # the newest changes the control workflow keeps (and carries across continue-as-new)
REASON_CHARS = 500

Decider = Literal["swoosh", "legacy"]


@functools.cache
def routable_prefixes() -> tuple[str, ...]:
    """Every prefix a caller's transition can have (`Region` of `Region_Event`), in statechart order."""
    seen: dict[str, None] = {}
    for name, t in default_statechart().transitions.items():
        if not t.spec.system:
            seen.setdefault(name.split("_", 1)[0], None)
    return tuple(seen)


def prefix_of(transition: str) -> str:
    return transition.split("_", 1)[0]


class MigrationConfig(BaseModel):
    """What an operator sets: the mode, the legacy system's URL, the routed prefixes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "off"
    legacy_url: str | None = None
    routed: tuple[str, ...] = ()

    @field_validator("legacy_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not URL_RE.match(value) or len(value) > 512:
            raise ValueError("legacy_url must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("routed", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("routed")
    @classmethod
    def _prefixes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = routable_prefixes()
        lowered = {p.lower(): p for p in known}
        out: list[str] = []
        for item in value:
            if item == ALL_PREFIXES:
                return (ALL_PREFIXES,)
            name = lowered.get(item.lower())
            if name is None:
                raise ValueError(f"unknown prefix {item[:64]!r}; routable: {', '.join(known)} or *")
            if name not in out:
                out.append(name)
        return tuple(out)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.mode != "off" and self.legacy_url is None:
            raise ValueError(f"mode {self.mode} needs legacy_url (the legacy system the mutations go to)")
        if self.mode == "route" and not self.routed:
            raise ValueError("mode route needs routed prefixes (e.g. Council,Ingestion, or * for all)")
        return self

    def decider(self, transition: str) -> Decider:
        """Who decides `transition` under this config."""
        if self.mode == "off":
            return "swoosh"
        if self.mode == "route" and (ALL_PREFIXES in self.routed or prefix_of(transition) in self.routed):
            return "swoosh"
        return "legacy"

    def describe(self) -> str:
        if self.mode == "route":
            return f"route {','.join(self.routed)}"
        return self.mode


class MigrationChange(BaseModel):
    """A change an operator asks for: the new config, who asks (a token label) and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: MigrationConfig
    by: str = Field(default="anonymous")
    reason: str = Field(default="", max_length=REASON_CHARS)
    expected_version: int | None = None  # optimistic: refuse if the version moved meanwhile

    @field_validator("by")
    @classmethod
    def _by(cls, value: str) -> str:
        if not LABEL_RE.fullmatch(value):
            raise ValueError("by must be a token label (1-64 of [A-Za-z0-9_.:@-])")
        return value


class AuditEntry(BaseModel):
    """One change of the mode: when (the workflow's time), by whom, from what to what, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int
    at_ms: int
    by: str
    reason: str
    before: MigrationConfig
    after: MigrationConfig


class MigrationView(BaseModel):
    """`GET /v1/migration`: the config in force, its version and last change, and the recent changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode
    legacy_url: str | None
    routed: tuple[str, ...]
    version: int
    changed_at_ms: int | None
    changed_by: str | None
    reason: str
    audit: list[AuditEntry] = Field(default_factory=list)

    @property
    def config(self) -> MigrationConfig:
        return MigrationConfig(mode=self.mode, legacy_url=self.legacy_url, routed=self.routed)


class MigrationError(ValueError):
    """A change that cannot be applied (nothing changed)."""


class MigrationState(BaseModel):
    """The control workflow's state: the config, its version and the newest audit entries."""

    model_config = ConfigDict(extra="forbid")

    config: MigrationConfig = Field(default_factory=MigrationConfig)
    version: int = 0
    audit: list[AuditEntry] = Field(default_factory=list)

    def check(self, change: MigrationChange) -> None:
        """Raise MigrationError when `change` cannot be applied now."""
        if change.expected_version is not None and change.expected_version != self.version:
            raise MigrationError(
                f"the migration config is at version {self.version}, not {change.expected_version}; re-read it"
            )

    def apply(self, change: MigrationChange, at_ms: int) -> AuditEntry:
        """Apply a checked change: a new version and an audit entry (also for a change to the same config)."""
        self.check(change)
        entry = AuditEntry(
            version=self.version + 1,
            at_ms=at_ms,
            by=change.by,
            reason=change.reason,
            before=self.config,
            after=change.config,
        )
        self.config, self.version = change.config, entry.version
        self.audit = [*self.audit, entry][-AUDIT_KEEP:]
        return entry

    def view(self, audit_limit: int = AUDIT_KEEP) -> MigrationView:
        last = self.audit[-1] if self.audit else None
        return MigrationView(
            mode=self.config.mode,
            legacy_url=self.config.legacy_url,
            routed=self.config.routed,
            version=self.version,
            changed_at_ms=last.at_ms if last else None,
            changed_by=last.by if last else None,
            reason=last.reason if last else "",
            audit=list(reversed(self.audit[-audit_limit:])) if audit_limit > 0 else [],
        )
