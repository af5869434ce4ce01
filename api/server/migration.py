"""The migration mode as an API replica sees it: settings, a short-lived copy of the control workflow's view.

Every replica reads the mode from the one control workflow (`swoosh-migration`) and trusts its copy
for `cache_ms`; a change made through any replica reaches the others within that time. The settings
(`SWOOSH_MIGRATION_*`) are the control workflow's config only when it is first created; afterwards
`PUT /v1/migration` changes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from swoosh.api.server.metrics import ApiMetrics
from swoosh.api.server.problems import HttpProblem, UnavailableProblem, translate
from swoosh.workflows.lifecycle.migration_client import change_migration, ensure_migration, read_migration
from swoosh.workflows.migration import MigrationChange, MigrationConfig, MigrationState, MigrationView, Mode


class StateMapping(BaseModel):
    """How one SWOOSH phase is read from the legacy system's state JSON: a dotted path and a value map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(min_length=1, max_length=200)
    values: dict[str, str] = Field(default_factory=dict)  # legacy value -> SWOOSH phase; unmapped compared as is


class MigrationSettings(BaseModel):
    """`[migration]`: the mode a new control workflow starts with, and how the legacy system is reached."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = "off"
    legacy_url: str | None = None
    routed: tuple[str, ...] = ()
    legacy_token: SecretStr | None = None
    legacy_token_file: Path | None = None
    legacy_timeout_ms: int = Field(default=10_000, ge=100, le=120_000)
    cache_ms: int = Field(default=1_000, ge=0, le=60_000)
    retry_after_s: int = Field(default=5, ge=1, le=300)
    # SWOOSH phase name (top, boot, ingestion, council, environment, execution) -> where the legacy
    # system's GET /state shows it. Empty: decisions are compared, states are not.
    state_map: dict[str, StateMapping] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        self.initial()  # the mode, URL and prefixes must form a valid config
        unknown = sorted(set(self.state_map) - set(PHASE_NAMES))
        if unknown:
            raise ValueError(f"state_map: unknown phase(s) {', '.join(unknown)}; known: {', '.join(PHASE_NAMES)}")
        if self.legacy_token is not None and self.legacy_token_file is not None:
            raise ValueError("give legacy_token or legacy_token_file, not both")
        return self

    def initial(self) -> MigrationConfig:
        try:
            return MigrationConfig(mode=self.mode, legacy_url=self.legacy_url, routed=self.routed)
        except ValidationError as err:
            raise ValueError("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())) from None

    def resolved_legacy_token(self) -> str | None:
        """The bearer token SWOOSH sends to the legacy system (never log it)."""
        if self.legacy_token is not None:
            return self.legacy_token.get_secret_value().strip() or None
        if self.legacy_token_file is None:
            return None
        try:
            return self.legacy_token_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None


PHASE_NAMES = ("top", "boot", "ingestion", "council", "environment", "execution")


class MigrationService:
    """This replica's view of the migration mode: read through a short cache, changed through the workflow."""

    def __init__(
        self,
        client: Callable[[], Awaitable[Client]],
        task_queue: str,
        settings: MigrationSettings,
        metrics: ApiMetrics,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = 15.0,
    ) -> None:
        self._client = client
        self.task_queue = task_queue
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._timeout = timeout_s
        self._view: MigrationView | None = None
        self._read_at = -1e18
        self._lock = asyncio.Lock()

    async def _call(self, fn: Callable[[Client], Awaitable[Any]]) -> Any:
        client = await self._client()
        try:
            async with asyncio.timeout(self._timeout):
                return await fn(client)
        except HttpProblem:
            raise
        except Exception as err:
            mapped = translate(err, None)
            if mapped is err:
                raise
            raise mapped from None

    async def _read(self, audit_limit: int) -> MigrationView:
        async def read(client: Client) -> MigrationView:
            try:
                return await read_migration(client, audit_limit)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            initial = self.settings.initial()
            if initial.mode == "off":
                # Nothing to hold yet: a deployment that never migrates never starts the control workflow.
                return MigrationState(config=initial).view(audit_limit)
            await ensure_migration(client, self.task_queue, initial)
            return await read_migration(client, audit_limit)

        view: MigrationView = await self._call(read)
        self._remember(view)
        return view

    def _remember(self, view: MigrationView) -> None:
        if self._view is None or view.version >= self._view.version:
            self._view, self._read_at = view, self._clock()
            self.metrics.migration(view.mode, view.version)

    async def current(self) -> MigrationConfig:
        """The config in force, at most `cache_ms` old; the last one known while Temporal is unreachable."""
        if self._view is not None and (self._clock() - self._read_at) * 1000 < self.settings.cache_ms:
            return self._view.config
        async with self._lock:
            if self._view is not None and (self._clock() - self._read_at) * 1000 < self.settings.cache_ms:
                return self._view.config
            try:
                return (await self._read(0)).config
            except UnavailableProblem:
                if self._view is None:
                    raise
                return self._view.config

    async def view(self, audit_limit: int = 20) -> MigrationView:
        """`GET /v1/migration`: read now (not from the cache)."""
        return await self._read(audit_limit)

    async def change(self, change: MigrationChange) -> MigrationView:
        """`PUT /v1/migration`: MigrationError when refused."""

        async def apply(client: Client) -> MigrationView:
            try:
                return await change_migration(client, change)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
            await ensure_migration(client, self.task_queue, self.settings.initial())
            return await change_migration(client, change)

        view: MigrationView = await self._call(apply)
        self._remember(view)
        return view
