"""The SWOOSH HTTP API: legacy WHOOSH paths and `/v1/projects/{project_id}/…`, on FastAPI.

`create_app(...)` wires a Temporal client (or an async provider of one) to the routes. Transitions
become the project workflow's Update; reads are its queries. Bad input of any kind is a 400 with a
contract code; Temporal trouble is a 503 (unreachable) or 429 (overloaded), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from fastapi import FastAPI
from pydantic import SecretStr
from temporalio.client import Client

from swoosh.api.server.admission import Admission
from swoosh.api.server.fastpath import FastTransitions, SwooshAPI
from swoosh.api.server.gateway import Gateway
from swoosh.api.server.http import MAX_BODY_BYTES, HttpEdge
from swoosh.api.server.metrics import ApiMetrics
from swoosh.api.server.migration import MigrationService, MigrationSettings
from swoosh.api.server.quota import ProjectQuota
from swoosh.api.server.router import MigrationRouter
from swoosh.api.server.routes import ROUTERS
from swoosh.api.server.signing import GatewayKeys, SigningGateway
from swoosh.api.server.sources import ClientProvider, ClientSource, DecisionPages, WindowSource
from swoosh.api.server.tokens import ApiToken, TokenSet
from swoosh.api.server.tracing import instrument, traced_fast_path
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle import telemetry
from swoosh.workflows.lifecycle.namespace import setup_problem
from swoosh.workflows.messages import LifecycleSettings

API_VERSION = "1.0.0"
DESCRIPTION = (
    "Deterministic orchestrator on Temporal. Transitions are signed proposals (Ed25519 over the canonical "
    "JSON of the body as sent); see docs/api.md and docs/contract.md."
)


def create_app(
    client: Client | ClientProvider,
    *,
    task_queue: str,
    keyring: Keyring | None,
    default_project: str = "default",
    tokens: TokenSet | Iterable[ApiToken | str | SecretStr] = (),
    decision_store: DecisionPages | None = None,
    admission: Admission | None = None,
    metrics: ApiMetrics | None = None,
    engine_config: EngineConfig | None = None,
    lifecycle_settings: LifecycleSettings | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    update_timeout_s: float = 60.0,
    query_timeout_s: float = 15.0,
    create_default_project: bool = True,
    check_setup: bool = True,
    windows: WindowSource | None = None,
    tracing: bool | None = None,
    migration: MigrationSettings | None = None,
    gateway_keys: GatewayKeys | None = None,
    max_projects: int | None = None,
) -> SwooshAPI:
    """Build the API.

    Args:
        client: a connected Temporal client, or an async function returning one (connected lazily,
            retried on the next request while Temporal is unreachable).
        tokens: accepted bearer tokens (`ApiToken` entries with label, scopes and projects, or plain
            secrets with every scope); empty = no authentication. Several at once allow rotation;
            `app.state.edge.replace_tokens(...)` swaps them while serving.
        decision_store: the configured decision-record store (JSONL, PostgreSQL or BUBBLE), read for
            the records a project's workflow no longer holds; closed with the app. None = a page that
            needs such records is a 503 `records_unavailable`.
        check_setup: before first using Temporal, check that `swoosh setup` prepared the namespace
            (until then every request is a 503 `setup_required` naming the command).
        windows: BACKBEAT's windows, for `GET /v1/projects/{id}/window` (the worker composes it from its
            BACKBEAT settings, `activities/windows.py`); closed with the app. None = that read is a 503.
        tracing: instrument the routes for OpenTelemetry; None = when this process traces
            (`OTEL_TRACES_EXPORTER`).
        migration: the migration settings (mode a new control workflow starts with, the legacy
            system's URL and token, the state mapping); None = defaults (mode off).
        gateway_keys: private keys of the gateway identities tokens may be bound to (signing gateway).
        max_projects: at most this many running projects (`PUT` of a new one beyond: 409
            `project_quota`); None = no quota. See `quota.py` for what it means with several replicas.
    """
    if not is_project_id(default_project):
        raise ValueError(f"default project id {default_project!r}: {PROJECT_ID_RULE}")
    gateway = Gateway(
        source=ClientSource(client, setup_check=setup_problem if check_setup else None),
        task_queue=task_queue,
        keyring=keyring,
        default_project=default_project,
        admission=admission or Admission(),
        metrics=metrics or ApiMetrics(),
        engine_config=engine_config,
        lifecycle_settings=lifecycle_settings,
        update_timeout_s=update_timeout_s,
        query_timeout_s=query_timeout_s,
        decision_store=decision_store,
        windows=windows,
        quota=ProjectQuota(max_projects),
    )
    gateway.signing = SigningGateway(gateway_keys or GatewayKeys())
    migration_settings = migration or MigrationSettings()
    service = MigrationService(gateway.source.get, task_queue, migration_settings, gateway.metrics)
    migration_router = MigrationRouter(gateway, service, migration_settings)
    edge = HttpEdge(gateway, tokens, max_body_bytes)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.ensure_default_project(stop)) if create_default_project else None
        try:
            yield
        finally:
            await migration_router.aclose()
            stop.set()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if decision_store is not None:
                await decision_store.aclose()
            if windows is not None:
                await windows.aclose()

    app = SwooshAPI(title="SWOOSH API", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.gateway = gateway
    app.state.router = migration_router
    edge.install(app)
    for router in ROUTERS:
        app.include_router(router)
    fast = FastTransitions(edge, gateway)
    app.transition_endpoint = fast
    app.responded = gateway.metrics.responded
    if telemetry.enabled() if tracing is None else tracing:
        instrument(app)
        app.traced_transitions = traced_fast_path(fast)
    return app
