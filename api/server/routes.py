"""The API's endpoints: legacy WHOOSH paths, `/v1/projects/{project_id}/…` and `/metrics`.

Each route checks its input, calls the `Gateway` and answers; bearer auth, the body limit and the
error answers are `http.py`'s. The two transition routes are usually answered by the fast path
(`fastpath.py`) through `answer_transition`; declared here, they define the OpenAPI operations.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swoosh.api.models import (
    DecisionsAnswer,
    HealthDown,
    Probe,
    Problem,
    ProjectCreated,
    ProposalEnvelope,
    ReceiptsAnswer,
    RejectionBody,
    WindowsAnswer,
)
from swoosh.api.server import jsonlog
from swoosh.api.server.gateway import RETRY_HEADER, Gateway
from swoosh.api.server.http import HttpEdge, edge_of, forbidden_reason, principal_of, require
from swoosh.api.server.metrics import PROMETHEUS_CONTENT_TYPE
from swoosh.api.server.mutation import Answer as RoutedAnswer
from swoosh.api.server.problems import ForbiddenProblem
from swoosh.api.server.router import MigrationRouter
from swoosh.api.server.signing import Delegation
from swoosh.workflows.answers import Accepted, DryRunAnswer
from swoosh.workflows.diagram import mermaid_marked, svg
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id, workflow_id
from swoosh.workflows.messages import HealthView, StateView
from swoosh.workflows.migration import MigrationChange, MigrationConfig, MigrationError, MigrationView, Mode
from swoosh.workflows.shadow import ShadowReport
from swoosh.workflows.statechart import default_statechart

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or bad bearer token (when tokens are configured)"},
    403: {
        "model": Problem,
        "description": "the token lacks the route's scope, or the project is not among its projects",
    },
    404: {"model": Problem, "description": "unknown project"},
    429: {"model": Problem, "description": "the project's admission queue is full; see Retry-After"},
    503: {
        "model": Problem,
        "description": "Temporal cannot be reached, or the guards could not be evaluated; see Retry-After",
    },
}
_TRANSITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": DryRunAnswer, "description": "`?dry_run=true`: what a real send would be answered; nothing changed"},
    202: {"model": Accepted, "description": "accepted now, or a duplicate of an accepted proposal"},
    400: {"model": RejectionBody, "description": "rejected with a contract code; nothing changed"},
    409: {"model": Problem, "description": "the project's workflow is closed (not at TERMINATED): no transitions"},
    413: {"model": Problem, "description": "body over 1 MiB"},
    **_PROBLEMS,
}
_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": RejectionBody, "description": "bad query (code schema)"},
    **_PROBLEMS,
}
_DECISIONS_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_READ_RESPONSES,
    503: {
        "model": Problem,
        "description": "Temporal cannot be reached, or records the page needs cannot be read from the "
        "decision-record store (error `records_unavailable`); never a page with a hole",
    },
}
_HEALTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown project"},
    503: {"model": HealthDown, "description": "Temporal cannot be reached"},
}
_ENVELOPE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The proposal envelope, signed; read as sent (max 1 MiB).",
        "content": {"application/json": {"schema": ProposalEnvelope.model_json_schema()}},
    }
}


def gateway_of(request: Request) -> Gateway:
    """The gateway `create_app` put on the request's app."""
    gateway: Gateway = request.app.state.gateway
    return gateway


# The scope each route needs (docs/api.md "Scopes"); routes without one are open.
READ = [Depends(require("read"))]
PROPOSE = [Depends(require("propose"))]
ADMIN = [Depends(require("admin"))]
GatewayDep = Annotated[Gateway, Depends(gateway_of)]
Projection = Annotated[str | None, Query(description="comma-separated section names, case-insensitive")]
At = Annotated[
    int | None,
    Query(ge=0, description="the state as it was after this index (0 = genesis), rebuilt from the project's history"),
]
XProjectId = Annotated[str | None, Header(alias="X-Project-Id")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
XHlc = Annotated[str | None, Header(alias="X-HLC")]
XWindowId = Annotated[str | None, Header(alias="X-Window-Id")]
XSwooshRetry = Annotated[str | None, Header(alias=RETRY_HEADER)]
DryRun = Annotated[
    bool,
    Query(description="true: run admission and guards as for a real send, change nothing, answer 200"),
]

router = APIRouter()
CHART = default_statechart()


class MigrationRequest(BaseModel):
    """`PUT /v1/migration`: the mode, the legacy system's URL, the routed prefixes, why."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    legacy_url: str | None = None
    routed: list[str] | str = Field(default_factory=list, description="prefixes such as Council,Ingestion; * = all")
    reason: str = Field(default="", max_length=500)
    expected_version: int | None = Field(default=None, description="refused if the config moved meanwhile")


# ---------------------------------------------------------------------- helpers
def check_project(project_id: str) -> RejectionBody | None:
    """A `schema` rejection for a project id that breaks the rule, else None."""
    return None if is_project_id(project_id) else RejectionBody.schema_error(PROJECT_ID_RULE, None)


def answer(view: Any) -> JSONResponse:
    if isinstance(view, RejectionBody):
        return JSONResponse(view.model_dump(mode="json"), status_code=400)
    return JSONResponse(view.model_dump(mode="json"))


def legacy_project(gateway: Gateway, project_id: str | None, x_project_id: str | None) -> str:
    return project_id or x_project_id or gateway.default_project


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


def router_of(request: Request) -> MigrationRouter:
    router: MigrationRouter = request.app.state.router
    return router


def delegation_of(request: Request, gateway: Gateway) -> Delegation | None:
    """The gateway identity the request's token is bound to, when this API holds its key."""
    principal = getattr(request.state, "principal", None)
    signer, label = getattr(principal, "gateway", None), getattr(principal, "label", None)
    if gateway.signing is None or not isinstance(signer, str) or not isinstance(label, str):
        return None
    return gateway.signing.delegation(signer, label)


def token_label(request: Request) -> str:
    label = getattr(getattr(request.state, "principal", None), "label", None)
    return label if isinstance(label, str) else "anonymous"


def routed(answer_: RoutedAnswer) -> JSONResponse:
    return JSONResponse(answer_.body, status_code=answer_.status, headers=answer_.headers)


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
    responses=_TRANSITION_RESPONSES,
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


@router.get("/state", dependencies=READ, response_model=StateView, responses=_READ_RESPONSES, tags=["legacy"])
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


@router.get("/health", response_model=HealthView, responses=_HEALTH_RESPONSES, tags=["legacy"])
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
        **_READ_RESPONSES,
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


@router.post(
    "/v1/projects/{project_id}/transition",
    dependencies=PROPOSE,
    status_code=202,
    responses=_TRANSITION_RESPONSES,
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


@router.get(
    "/v1/projects/{project_id}/state",
    dependencies=READ,
    response_model=StateView,
    responses=_READ_RESPONSES,
    tags=["projects"],
)
async def get_project_state(
    project_id: str, gateway: GatewayDep, projection: Projection = None, at: At = None
) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.state(project_id, projection, at))


@router.get(
    "/v1/projects/{project_id}/health", response_model=HealthView, responses=_HEALTH_RESPONSES, tags=["projects"]
)
async def get_project_health(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.health(project_id))


@router.get(
    "/v1/projects/{project_id}/decisions",
    dependencies=READ,
    response_model=DecisionsAnswer,
    responses=_DECISIONS_RESPONSES,
    tags=["projects"],
)
async def get_project_decisions(
    project_id: str,
    gateway: GatewayDep,
    after_index: Annotated[int, Query(ge=0, description="records with index > after_index")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.decisions(project_id, after_index, limit))


# ---------------------------------------------------------------------- process probes (open: no token)
_NO_STORE = {"Cache-Control": "no-store"}
READY_RETRY_AFTER_S = 5


@router.get(
    "/livez",
    response_model=Probe,
    tags=["operations"],
    summary="Liveness: the API process is up (never asks Temporal; open, no token)",
)
async def get_livez() -> JSONResponse:
    return JSONResponse(Probe(status="ok").model_dump(exclude_none=True), headers=_NO_STORE)


@router.get(
    "/readyz",
    response_model=Probe,
    responses={503: {"model": Probe, "description": "not ready, with the reason; see Retry-After"}},
    tags=["operations"],
    summary="Readiness: Temporal reachable, namespace set up, decision store usable (open, no token)",
)
async def get_readyz(gateway: GatewayDep) -> JSONResponse:
    reason = await gateway.readiness()
    if reason is not None:
        body = Probe(status="unready", reason=reason).model_dump()
        return JSONResponse(body, status_code=503, headers={**_NO_STORE, "Retry-After": str(READY_RETRY_AFTER_S)})
    return JSONResponse(Probe(status="ready").model_dump(exclude_none=True), headers=_NO_STORE)


@router.get(
    "/v1/projects/{project_id}/receipts",
    dependencies=READ,
    response_model=ReceiptsAnswer,
    responses=_READ_RESPONSES,
    tags=["projects"],
    summary="Signed Merkle roots over each snapshot interval's decision records",
)
async def get_project_receipts(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.receipts(project_id))


@router.get(
    "/v1/projects/{project_id}/window",
    dependencies=READ,
    response_model=WindowsAnswer,
    responses=_READ_RESPONSES,
    tags=["projects"],
    summary="BACKBEAT windows now: the open one, when each class opens next, and the project's next gated step",
)
async def get_project_window(project_id: str, gateway: GatewayDep) -> JSONResponse:
    return answer(check_project(project_id) or await gateway.window(project_id))


DiagramFormat = Annotated[
    Literal["svg", "mermaid"], Query(description="svg (default): an SVG picture; mermaid: Mermaid stateDiagram-v2 text")
]


@router.get(
    "/v1/projects/{project_id}/diagram",
    dependencies=READ,
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {}, "text/plain": {}},
            "description": "the statechart, the project's states marked active (or held: remembered while paused, …)",
        },
        **_READ_RESPONSES,
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


# ---------------------------------------------------------------------- migration from WHOOSH
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
    responses=_READ_RESPONSES,
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
    responses={**_TRANSITION_RESPONSES, **_NOT_MAPPABLE},
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
    responses={**_TRANSITION_RESPONSES, **_NOT_MAPPABLE},
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


@router.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics")
async def get_metrics(gateway: GatewayDep) -> Response:
    body = await asyncio.to_thread(gateway.metrics.exposition)  # may read the SDK exporter over loopback
    return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)
