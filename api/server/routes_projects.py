"""A project's routes: create it, read its state (now or past), health, decisions, receipts, window, diagram.

The legacy `GET /state` and `GET /health` read the project named by the query, `X-Project-Id` or
the default project; the `/v1/projects/{project_id}/…` routes the path's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from swoosh.api.models import (
    DecisionsAnswer,
    HealthDown,
    Problem,
    ProjectCreated,
    ReceiptsAnswer,
    RejectionBody,
    WindowsAnswer,
)
from swoosh.api.server.gateway import Gateway
from swoosh.api.server.http import forbidden_reason, principal_of
from swoosh.api.server.problems import ForbiddenProblem
from swoosh.api.server.routes_common import ADMIN, READ, READ_RESPONSES, GatewayDep, XProjectId, answer, check_project
from swoosh.workflows.diagram import mermaid_marked, svg
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.messages import HealthView, StateView
from swoosh.workflows.statechart import default_statechart

DECISIONS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **READ_RESPONSES,
    503: {
        "model": Problem,
        "description": "Temporal cannot be reached, or records the page needs cannot be read from the "
        "decision-record store (error `records_unavailable`); never a page with a hole",
    },
}
HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown project"},
    503: {"model": HealthDown, "description": "Temporal cannot be reached"},
}
Projection = Annotated[str | None, Query(description="comma-separated section names, case-insensitive")]
At = Annotated[
    int | None,
    Query(ge=0, description="the state as it was after this index (0 = genesis), rebuilt from the project's history"),
]
DiagramFormat = Annotated[
    Literal["svg", "mermaid"], Query(description="svg (default): an SVG picture; mermaid: Mermaid stateDiagram-v2 text")
]

router = APIRouter()
CHART = default_statechart()


def legacy_project(gateway: Gateway, project_id: str | None, x_project_id: str | None) -> str:
    return project_id or x_project_id or gateway.default_project


@router.get("/state", dependencies=READ, response_model=StateView, responses=READ_RESPONSES, tags=["legacy"])
async def get_state(
    request: Request,
    gateway: GatewayDep,
    project_id: str | None = None,
    projection: Projection = None,
    at: At = None,
    x_project_id: XProjectId = None,
) -> JSONResponse:
    pid = legacy_project(gateway, project_id, x_project_id)
    principal = principal_of(request)
    if not principal.may("read", pid):
        raise ForbiddenProblem(forbidden_reason(principal, "read", pid))
    return answer(check_project(pid) or await gateway.state(pid, projection, at))


@router.get("/health", response_model=HealthView, responses=HEALTH_RESPONSES, tags=["legacy"])
async def get_health(
    gateway: GatewayDep, project_id: str | None = None, x_project_id: XProjectId = None
) -> JSONResponse:
    pid = legacy_project(gateway, project_id, x_project_id)
    return answer(check_project(pid) or await gateway.health(pid))


# ---------------------------------------------------------------------- /v1
@router.put(
    "/v1/projects/{project_id}",
    dependencies=ADMIN,
    response_model=ProjectCreated,
    status_code=201,
    responses={
        200: {"model": ProjectCreated, "description": "the project already exists"},
        409: {
            "model": Problem,
            "description": "the project is closed (never started again), or as many projects run as the "
            "quota allows (project_quota)",
        },
        **READ_RESPONSES,
    },
    tags=["projects"],
    summary="Create a project (idempotent); its identities come from the keyring",
)
async def put_project(project_id: str, gateway: GatewayDep) -> JSONResponse:
    bad = check_project(project_id)
    if bad is not None:
        return answer(bad)
    created = await gateway.create_project(project_id)
    body = ProjectCreated(project_id=project_id, workflow_id=workflow_id(project_id), created=created)
    return JSONResponse(body.model_dump(), status_code=201 if created else 200)


@router.get(
    "/v1/projects/{project_id}/state",
    dependencies=READ,
    response_model=StateView,
    responses=READ_RESPONSES,
    tags=["projects"],
)
async def get_project_state(
    project_id: str, gateway: GatewayDep, projection: Projection = None, at: At = None
) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.state(project_id, projection, at))


@router.get(
    "/v1/projects/{project_id}/health", response_model=HealthView, responses=HEALTH_RESPONSES, tags=["projects"]
)
async def get_project_health(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.health(project_id))


@router.get(
    "/v1/projects/{project_id}/decisions",
    dependencies=READ,
    response_model=DecisionsAnswer,
    responses=DECISIONS_RESPONSES,
    tags=["projects"],
)
async def get_project_decisions(
    project_id: str,
    gateway: GatewayDep,
    after_index: Annotated[int, Query(ge=0, description="records with index > after_index")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.decisions(project_id, after_index, limit))


@router.get(
    "/v1/projects/{project_id}/receipts",
    dependencies=READ,
    response_model=ReceiptsAnswer,
    responses=READ_RESPONSES,
    tags=["projects"],
    summary="Signed Merkle roots over each snapshot interval's decision records",
)
async def get_project_receipts(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.receipts(project_id))


@router.get(
    "/v1/projects/{project_id}/window",
    dependencies=READ,
    response_model=WindowsAnswer,
    responses=READ_RESPONSES,
    tags=["projects"],
    summary="BACKBEAT windows now: the open one, when each class opens next, and the project's next gated step",
)
async def get_project_window(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.window(project_id))


@router.get(
    "/v1/projects/{project_id}/diagram",
    dependencies=READ,
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {}, "text/plain": {}},
            "description": "the statechart, the project's states marked active (or held: remembered while paused, …)",
        },
        **READ_RESPONSES,
    },
    tags=["projects"],
    summary="The statechart with the project's active states marked (SVG, or Mermaid text)",
)
async def get_project_diagram(
    project_id: str, gateway: GatewayDep, format: DiagramFormat = "svg", at: At = None
) -> Response:
    bad = check_project(project_id)
    view = bad or await gateway.state(project_id, None, at)
    if isinstance(view, RejectionBody):
        return answer(view)
    doc = view.projection
    if format == "mermaid":
        return Response(mermaid_marked(CHART, doc), media_type="text/plain; charset=utf-8")
    title = f"{project_id} · index {view.index} · {view.phase['top']}" + ("" if at is None else " (a past state)")
    return Response(svg(CHART, doc, title=title), media_type="image/svg+xml")
