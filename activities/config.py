"""The guard-fact providers' configuration: what every provider shares, and each one's own section.

Declared here, beside the providers that use them; the process settings (`swoosh.worker.settings`)
compose these sections with the rest and load them from TOML and `SWOOSH_*` variables.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from swoosh.guards.facts import PolicyRuleSpec
from swoosh.guards.policy import compile_custom
from swoosh.workflows.crypto import public_key_of

BUILTIN_RULE_IDS = ("pem-private-key", "bearer-token", "api-key")

ProviderMode = Literal["embedded", "http"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderSettings(_Section):
    """What every guard-fact provider shares: mode, upstream, timeouts, refresh cadence, fact ageing."""

    mode: ProviderMode = "embedded"
    base_url: str | None = None
    timeout_ms: int = Field(default=2_000, ge=1, le=120_000)
    connect_timeout_ms: int = Field(default=1_000, ge=1, le=120_000)
    refresh_ms: int = Field(default=60_000, ge=10)
    jitter_ms: int = Field(default=5_000, ge=0)
    retry_ms: int = Field(default=2_000, ge=10)
    max_age_ms: int = Field(default=300_000, ge=10)
    stale_grace_ms: int = Field(default=0, ge=0)
    max_skew_ms: int = Field(default=30_000, ge=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.mode == "http" and self.base_url is None:
            raise ValueError("mode 'http' needs base_url")
        if self.jitter_ms >= self.refresh_ms:
            raise ValueError(f"jitter_ms ({self.jitter_ms}) must be below refresh_ms ({self.refresh_ms})")
        if self.refresh_ms > self.max_age_ms:
            raise ValueError(f"refresh_ms ({self.refresh_ms}) must not exceed max_age_ms ({self.max_age_ms})")
        if self.stale_grace_ms > self.max_age_ms:
            raise ValueError(f"stale_grace_ms ({self.stale_grace_ms}) must not exceed max_age_ms ({self.max_age_ms})")
        return self


class KachingSettings(ProviderSettings):
    """KACHING licence: a local signed licence file (embedded) or a licence token validated over HTTP."""

    license_file: Path | None = None  # default: <data_dir>/license.json
    public_key: str | None = None  # the licence signer id, hmmm:pubkey:<base64url>
    public_key_file: Path | None = None  # default: <data_dir>/license.pub
    token: SecretStr | None = None
    token_file: Path | None = None

    @field_validator("public_key")
    @classmethod
    def _signer(cls, value: str | None) -> str | None:
        if value is not None and public_key_of(value) is None:
            raise ValueError("must be a signer id hmmm:pubkey:<base64url of a 32-byte Ed25519 public key>")
        return value

    def resolved_public_key(self) -> str | None:
        """The licence public key, from `public_key` or else `public_key_file`; None when neither is usable."""
        if self.public_key is not None:
            return self.public_key
        if self.public_key_file is None:
            return None
        try:
            text = self.public_key_file.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text if public_key_of(text) is not None else None

    def resolved_token(self) -> str | None:
        """The licence token from `token` or else `token_file` (never log it)."""
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


class BackbeatSettings(ProviderSettings):
    """BACKBEAT: the local beat schedule (embedded) or beat frames polled from a BACKBEAT endpoint."""

    refresh_ms: int = Field(default=1_000, ge=10)
    jitter_ms: int = Field(default=100, ge=0)
    retry_ms: int = Field(default=500, ge=10)
    max_age_ms: int = Field(default=60_000, ge=10)
    tempo_bpm: int = Field(default=30, ge=1, le=6_000)
    beats_per_bar: int = Field(default=4, ge=1, le=1_024)
    share_unit: Literal["percent", "beats"] = "percent"
    plan: int = Field(default=25, ge=1)
    work: int = Field(default=25, ge=1)
    review: int = Field(default=25, ge=1)
    reverb: int = Field(default=25, ge=1)
    epoch_ms: int = Field(default=0, ge=0)
    pressure: int = Field(default=0, ge=0, le=100)

    @model_validator(mode="after")
    def _shares(self) -> Self:
        total = self.plan + self.work + self.review + self.reverb
        want = 100 if self.share_unit == "percent" else self.beats_per_bar
        if total != want:
            what = "100 (percent)" if self.share_unit == "percent" else f"beats_per_bar ({self.beats_per_bar})"
            raise ValueError(f"plan + work + review + reverb = {total}, must equal {what}")
        return self


class McpSettings(ProviderSettings):
    """MCP registry: a static tool list (embedded) or the registry's tool versions over HTTP."""

    refresh_ms: int = Field(default=30_000, ge=10)
    jitter_ms: int = Field(default=3_000, ge=0)
    max_age_ms: int = Field(default=120_000, ge=10)
    stale_grace_ms: int = Field(default=30_000, ge=0)
    tools: dict[str, str] = Field(default_factory=lambda: {"ucxl.resolve": "1.0.0", "bubble.emit": "1.0.0"})
    probe: tuple[str, ...] = ()  # http mode: the tools to ask the registry about (empty = all it serves)

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: dict[str, str]) -> dict[str, str]:
        for name, version in value.items():
            if not name.strip() or not version.strip():
                raise ValueError("tool names and versions must be non-empty")
        return value


class ShhhSettings(ProviderSettings):
    """SHHH policy: built-in secret rules plus custom regex rules; optionally an external policy endpoint."""

    refresh_ms: int = Field(default=60_000, ge=10)  # how long an external verdict for the same inputs is reused
    builtin: bool = True
    rules: tuple[PolicyRuleSpec, ...] = ()

    @field_validator("rules")
    @classmethod
    def _rules(cls, rules: tuple[PolicyRuleSpec, ...]) -> tuple[PolicyRuleSpec, ...]:
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            where = f"rule {i} ({rule.id!r})"
            if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", rule.id):
                raise ValueError(f"{where}: id must be 1-64 of [A-Za-z0-9_.:-]")
            if rule.id in seen or rule.id in BUILTIN_RULE_IDS:
                raise ValueError(f"{where}: id is used twice or by a built-in rule")
            seen.add(rule.id)
            try:
                compiled = compile_custom(rule.pattern)  # RE2: linear time whatever the pattern
            except ValueError as err:
                raise ValueError(f"{where}: invalid regex {rule.pattern!r}: {err}") from None
            if compiled.search("") is not None:
                raise ValueError(f"{where}: pattern matches the empty string, so it would flag every value")
        return rules


class ProvidersConfig(Protocol):
    """What the facts service reads of the process settings (the worker's `Settings` has it all)."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def kaching(self) -> KachingSettings: ...

    @property
    def backbeat(self) -> BackbeatSettings: ...

    @property
    def mcp(self) -> McpSettings: ...

    @property
    def shhh(self) -> ShhhSettings: ...
