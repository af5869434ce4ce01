"""Facts the guards decide on, and the provider interfaces that fetch them.

Facts are cached, signed where the source signs them, and carry their age so guards can refuse
stale ones. Guards never fetch: providers (in `activities/`) do, out of band.
"""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from swoosh.workflows.statechart import WindowClass

LicenseStatus = Literal["valid", "throttled", "denied", "expired", "unreachable"]


class _Fact(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LicenseFact(_Fact):
    """KACHING's verdict on the licence, as last fetched and verified."""

    status: LicenseStatus
    license_id: str | None = None
    expires_at_ms: int | None = None
    fetched_at_ms: int
    verified: bool = False  # signature of the licence verdict checked by the provider
    detail: str = ""


class McpFact(_Fact):
    """MCP registry reachability and the versions of the tools it serves."""

    reachable: bool
    tools: dict[str, str] = Field(default_factory=dict)
    fetched_at_ms: int
    detail: str = ""


class BeatFrame(_Fact):
    """A BACKBEAT beat frame (`backbeat.beatframe.v1`): which window is open, and until when."""

    window_id: str
    phase: WindowClass
    beat_index: int
    tempo_bpm: int
    deadline_at_ms: int
    pressure: int = 0  # 0-100; scales retry backoff
    received_at_ms: int
    # Only in BACKBEAT's published frames: the sending cluster, first-beat-of-bar, its HLC (wall:logical:node).
    cluster_id: str | None = None
    downbeat: bool | None = None
    hlc: str | None = None


class PolicyRuleSpec(_Fact):
    """An SHHH rule: a regex matched against inputs and evidence."""

    id: str
    pattern: str
    severity: Literal["low", "medium", "high", "critical"] = "high"
    description: str = ""


class PolicyFact(_Fact):
    """The policy in force: custom rules beside the built-in ones, or an external verdict."""

    rules: tuple[PolicyRuleSpec, ...] = ()
    builtin: bool = True
    external_breaches: tuple[str, ...] = ()  # breaches reported by an external SHHH endpoint
    fetched_at_ms: int = 0


class Facts(_Fact):
    """Everything the guards may consult for one decision, plus the decision time."""

    now_ms: int
    license: LicenseFact | None = None
    mcp: McpFact | None = None
    beat: BeatFrame | None = None
    policy: PolicyFact = Field(default_factory=PolicyFact)
    max_fact_age_ms: int = 300_000
    quorum_rule: Literal["majority"] = "majority"


class LicenseProvider(Protocol):
    async def license(self) -> LicenseFact: ...


class McpProvider(Protocol):
    async def mcp(self) -> McpFact: ...


class BeatProvider(Protocol):
    async def beat(self, at_ms: int) -> BeatFrame | None: ...


class PolicyProvider(Protocol):
    async def policy(self, inputs: dict[str, object], evidence: list[str]) -> PolicyFact: ...
