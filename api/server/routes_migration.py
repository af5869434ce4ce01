"""The migration from WHOOSH: the mode (read, changed, audited), the catch-up, shadow reports, WHOOSH's paths.

`PUT /v1/migration` changes the mode for every replica; `POST /api/v1/opportunities/council` and
`POST /api/v1/tasks` take WHOOSH-compatible requests and map each onto one transition, routed by the
mode as transitions are (`router.py`).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swoosh.api.models import Problem, RejectionBody
from swoosh.api.server import jsonlog
from swoosh.api.server.http import edge_of, principal_of
from swoosh.api.server.routes_common import (
    ADMIN,
    PROPOSE,
    READ,
    READ_RESPONSES,
    TRANSITION_RESPONSES,
    GatewayDep,
    IdempotencyKey,
    XHlc,
    XProjectId,
    XWindowId,
    answer,
    check_project,
    delegation_of,
    routed,
    router_of,
)
from swoosh.workflows.migration import MigrationChange, MigrationConfig, MigrationError, MigrationView, Mode
from swoosh.workflows.shadow import ShadowReport

router = APIRouter()


def token_label(request: Request) -> str:
    label = getattr(getattr(request.state, "principal", None), "label", None)
    return label if isinstance(label, str) else "anonymous"


class MigrationRequest(BaseModel):
    """`PUT /v1/migration`: the mode, the legacy system's URL, the routed prefixes, why."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    legacy_url: str | None = None
    routed: list[str] | str = Field(default_factory=list, description="prefixes such as Council,Ingestion; * = all")
    reason: str = Field(default="", max_length=500)
    expected_version: int | None = Field(default=None, description="refused if the config moved meanwhile")


_NOT_MAPPABLE: dict[int | str, dict[str, Any]] = {
    501: {"model": Problem, "description": "not_mappable: maps to no single transition; see reason"}
}


@router.get("/v1/migration", dependencies=READ, response_model=MigrationView, tags=["migration"])
async def get_migration(
    request: Request, audit: Annotated[int, Query(ge=0, le=100, description="newest audit entries")] = 20
) -> JSONResponse:
    view = await router_of(request).migration.view(audit)
    return JSONResponse(view.model_dump(mode="json"))


@router.put(
    "/v1/migration",
    dependencies=ADMIN,
    response_model=MigrationView,
    responses={400: {"model": RejectionBody, "description": "an invalid or refused change (nothing changed)"}},
    tags=["migration"],
    summary="Change the migration mode for every API replica (audited)",
)
async def put_migration(request: Request, body: MigrationRequest) -> JSONResponse:
    try:
        config = MigrationConfig(mode=body.mode, legacy_url=body.legacy_url, routed=body.routed)
        change = MigrationChange(
            config=config, by=token_label(request), reason=body.reason, expected_version=body.expected_version
        )
        view = await router_of(request).migration.change(change)
    except (ValidationError, MigrationError) as err:
        reason = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
        return answer(RejectionBody.schema_error(str(reason).removeprefix("Value error, ")[:500], None))
    last = view.audit[0] if view.audit else None
    if last is not None and last.before.mode == "bypass" and view.mode in ("shadow", "route"):
        router_of(request).catchup.catch_up_soon()  # SWOOSH applies what the legacy system accepted meanwhile
    jsonlog.event(
        f"migration mode {view.mode} (version {view.version}) set by {view.changed_by}",
        event="migration_mode",
        mode=view.mode,
        version=view.version,
        token_label=view.changed_by,
    )
    return JSONResponse(view.model_dump(mode="json"))


@router.post(
    "/v1/migration/catch-up",
    dependencies=ADMIN,
    tags=["migration"],
    summary="Apply, in order, what the legacy system accepted while SWOOSH applied nothing (every project)",
)
async def post_migration_catch_up(request: Request) -> JSONResponse:
    return JSONResponse(await router_of(request).catchup.catch_up_all())


@router.get(
    "/v1/projects/{project_id}/shadow",
    dependencies=READ,
    response_model=ShadowReport,
    responses=READ_RESPONSES,
    tags=["migration"],
    summary="The project's divergences between SWOOSH and the legacy system (newest first)",
)
async def get_project_shadow(
    project_id: str,
    request: Request,
    gateway: GatewayDep,
    limit: Annotated[int, Query(ge=0, le=200)] = 50,
) -> JSONResponse:
    if (bad := check_project(project_id)) is not None:
        return answer(bad)
    report = await gateway.shadow_report(project_id, limit)
    return JSONResponse(report.model_dump(mode="json"))


@router.post(
    "/api/v1/opportunities/council",
    dependencies=PROPOSE,
    status_code=202,
    responses={**TRANSITION_RESPONSES, **_NOT_MAPPABLE},
    tags=["whoosh"],
    summary="WHOOSH-compatible: a CHORUS council opportunity, mapped onto Council_ProfilesLoaded of its council_id",
)
async def post_council_opportunity(
    request: Request, gateway: GatewayDep, idempotency_key: IdempotencyKey = None, x_hlc: XHlc = None
) -> JSONResponse:
    raw = await edge_of(request).read_body(request)
    started = time.monotonic()
    return routed(
        await router_of(request).whoosh(
            "council", raw, request.headers, started, principal_of(request), delegation_of(request, gateway)
        )
    )


@router.post(
    "/api/v1/tasks",
    dependencies=PROPOSE,
    status_code=202,
    responses={**TRANSITION_RESPONSES, **_NOT_MAPPABLE},
    tags=["whoosh"],
    summary="WHOOSH-compatible: a task whose type names a transition (context = its inputs)",
)
async def post_task(
    request: Request,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
    x_hlc: XHlc = None,
    x_window_id: XWindowId = None,
    x_project_id: XProjectId = None,
) -> JSONResponse:
    raw = await edge_of(request).read_body(request)
    started = time.monotonic()
    return routed(
        await router_of(request).whoosh(
            "task", raw, request.headers, started, principal_of(request), delegation_of(request, gateway)
        )
    )
