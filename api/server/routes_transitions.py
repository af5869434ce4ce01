"""The two transition routes: `POST /transition` (legacy) and `POST /v1/projects/{project_id}/transition`.

They are usually answered by the fast path (`fastpath.py`) through `answer_transition`; declared here,
they define the OpenAPI operations and answer requests under a root path. A transition is routed by
the migration mode (`router.py`), a dry run is SWOOSH's alone.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from swoosh.api.models import ProposalEnvelope
from swoosh.api.server.gateway import RETRY_HEADER, Gateway
from swoosh.api.server.http import HttpEdge, edge_of, principal_of
from swoosh.api.server.routes_common import (
    PROPOSE,
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

_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The proposal envelope, signed; read as sent (max 1 MiB).",
        "content": {"application/json": {"schema": ProposalEnvelope.model_json_schema()}},
    }
}
XSwooshRetry = Annotated[str | None, Header(alias=RETRY_HEADER)]
DryRun = Annotated[
    bool,
    Query(description="true: run admission and guards as for a real send, change nothing, answer 200"),
]

router = APIRouter()


# `?dry_run=`: read as FastAPI's routes read a bool query parameter (pydantic's words, the last value
# when repeated, the same error text), so the fast path and the routes answer alike.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})
DRY_RUN_INVALID = "query.dry_run: Input should be a valid boolean, unable to interpret input"


def dry_run_flag(request: Request) -> bool | None:
    """The `dry_run` query parameter: True, False (absent or false), or None when it is not a boolean."""
    values = request.query_params.getlist("dry_run")
    if not values:
        return False
    word = values[-1].lower()
    return True if word in _TRUE else False if word in _FALSE else None


async def answer_transition(
    request: Request, path_project: str | None, edge: HttpEdge, gateway: Gateway
) -> JSONResponse:
    """Both transition routes (and the fast path): the body as sent, routed by the migration mode.

    With `?dry_run=true` the same admission and guards run, nothing changes, and the answer is 200: a
    dry run is SWOOSH's alone in every migration mode (it decides nothing).
    """
    started = time.monotonic()
    if path_project is not None and (bad := check_project(path_project)) is not None:
        return answer(bad)
    dry = dry_run_flag(request)
    if dry is None:
        return answer(await gateway.schema_rejection(path_project, DRY_RUN_INVALID))  # as the routes' own check
    raw = await edge.read_body(request)
    principal, delegation = principal_of(request), delegation_of(request, gateway)
    if dry:
        outcome = await gateway.transition(raw, request.headers, path_project, started, principal, delegation, dry=True)
        return JSONResponse(outcome.answer.model_dump(mode="json"), status_code=outcome.status)
    decided = await router_of(request).transition(raw, request.headers, path_project, started, principal, delegation)
    return routed(decided)


# ---------------------------------------------------------------------- legacy paths
@router.post(
    "/transition",
    dependencies=PROPOSE,
    status_code=202,
    responses=TRANSITION_RESPONSES,
    openapi_extra=_ENVELOPE_BODY,
    tags=["legacy"],
    summary="Propose a transition (project from the body, X-Project-Id, or the default project)",
)
async def post_transition(
    request: Request,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
    x_hlc: XHlc = None,
    x_window_id: XWindowId = None,
    x_project_id: XProjectId = None,
    x_swoosh_retry: XSwooshRetry = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return await answer_transition(request, None, edge_of(request), gateway)


@router.post(
    "/v1/projects/{project_id}/transition",
    dependencies=PROPOSE,
    status_code=202,
    responses=TRANSITION_RESPONSES,
    openapi_extra=_ENVELOPE_BODY,
    tags=["projects"],
    summary="Propose a transition to a project",
)
async def post_project_transition(
    project_id: str,
    request: Request,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
    x_hlc: XHlc = None,
    x_window_id: XWindowId = None,
    x_swoosh_retry: XSwooshRetry = None,
    dry_run: DryRun = False,
) -> JSONResponse:
    return await answer_transition(request, project_id, edge_of(request), gateway)
