"""The SWOOSH HTTP API: legacy WHOOSH paths and `/v1/projects/{project_id}/…`, on FastAPI.

`create_app(...)` wires a Temporal client (or an async provider of one) to the routes. Transitions
become the project workflow's Update; reads are its queries. Bad input of any kind is a 400 with a
contract code; Temporal trouble is a 503 (unreachable) or 429 (overloaded), never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send
from temporalio.client import Client

from swoosh.api.models import DecisionsAnswer, HealthDown, Problem, ProjectCreated, ProposalEnvelope, RejectionBody
from swoosh.api.server import jsonlog
from swoosh.api.server.admission import Admission
from swoosh.api.server.gateway import MAX_BODY_BYTES, RETRY_HEADER, ClientProvider, ClientSource, Gateway
from swoosh.api.server.metrics import PROMETHEUS_CONTENT_TYPE, ApiMetrics
from swoosh.api.server.problems import HttpProblem, PayloadTooLarge, Unauthorized, Unavailable
from swoosh.workflows.answers import Accepted
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import PROJECT_ID_RE, workflow_id
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.messages import HealthView, LifecycleSettings, StateView

API_VERSION = "1.0.0"
DESCRIPTION = (
    "Deterministic orchestrator on Temporal. Transitions are signed proposals (Ed25519 over the canonical "
    "JSON of the body as sent); see docs/api.md and the project's CONTRACT."
)

_bearer = HTTPBearer(auto_error=False, description="one of SWOOSH_API_TOKENS (only when tokens are configured)")

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or bad bearer token (when tokens are configured)"},
    404: {"model": Problem, "description": "unknown project"},
    429: {"model": Problem, "description": "the project's admission queue is full; see Retry-After"},
    503: {"model": Problem, "description": "Temporal cannot be reached; see Retry-After"},
}
_TRANSITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "accepted now, or a duplicate of an accepted proposal"},
    400: {"model": RejectionBody, "description": "rejected with a contract code; nothing changed"},
    413: {"model": Problem, "description": "body over 1 MiB"},
    **_PROBLEMS,
}
_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": RejectionBody, "description": "bad query (code schema)"},
    **_PROBLEMS,
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

HeaderStr = Annotated[str | None, Header()]
TransitionEndpoint = Callable[[Scope, Receive, Send, str | None], Awaitable[None]]
_V1_PROJECTS, _TRANSITION = "/v1/projects/", "/transition"


class SwooshAPI(FastAPI):
    """FastAPI, with the two transition routes answered before FastAPI's routing.

    Transitions are the hot path: every one is a request. FastAPI's routing, dependency solving
    and middleware layers cost more CPU per request here than all of SWOOSH's own API work (about
    0.35 ms of the API's 2.7 ms, measured under `make bench`). The routes stay declared on the
    app (they define the OpenAPI operations and serve requests under a root path); a request they
    would match is handed to `transition_endpoint` instead, which does the same work: bearer
    check, body limit, the same handler and the same error answers.
    """

    transition_endpoint: TransitionEndpoint | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.transition_endpoint
        if endpoint is None or scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await super().__call__(scope, receive, send)
        scope["app"] = self  # as Starlette sets it for its routes
        path: str = scope["path"]
        if path == _TRANSITION:
            return await endpoint(scope, receive, send, None)
        if path.startswith(_V1_PROJECTS) and path.endswith(_TRANSITION):
            project_id = path[len(_V1_PROJECTS) : -len(_TRANSITION)]
            if project_id and "/" not in project_id:
                return await endpoint(scope, receive, send, project_id)
        await super().__call__(scope, receive, send)


def create_app(
    client: Client | ClientProvider,
    *,
    task_queue: str,
    keyring: Keyring | None,
    default_project: str = "default",
    tokens: Iterable[str | SecretStr] = (),
    data_dir: Path | str = Path(".swoosh"),
    admission: Admission | None = None,
    metrics: ApiMetrics | None = None,
    engine_config: EngineConfig | None = None,
    lifecycle_settings: LifecycleSettings | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    update_timeout_s: float = 60.0,
    query_timeout_s: float = 15.0,
    create_default_project: bool = True,
) -> SwooshAPI:
    """Build the API.

    Args:
        client: a connected Temporal client, or an async function returning one (connected lazily,
            retried on the next request while Temporal is unreachable).
        tokens: accepted bearer tokens; empty = no authentication. Several at once allow rotation.
        data_dir: the decision records' JSONL sink lives in `<data_dir>/decisions` (read for old records).
    """
    if not PROJECT_ID_RE.fullmatch(default_project):
        raise ValueError(f"default project id {default_project!r} is not 1-64 of [A-Za-z0-9_.-]")
    secrets = tuple(t.get_secret_value() if isinstance(t, SecretStr) else str(t) for t in tokens)
    if any(not t for t in secrets):
        raise ValueError("an API token must not be empty")
    gateway = Gateway(
        source=ClientSource(client),
        task_queue=task_queue,
        keyring=keyring,
        default_project=default_project,
        data_dir=Path(data_dir),
        admission=admission or Admission(),
        metrics=metrics or ApiMetrics(),
        engine_config=engine_config,
        lifecycle_settings=lifecycle_settings,
        update_timeout_s=update_timeout_s,
        query_timeout_s=query_timeout_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(gateway.ensure_default_project(stop)) if create_default_project else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = SwooshAPI(title="SWOOSH API", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.gateway = gateway

    async def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        check_token(credentials.credentials if credentials is not None else None)

    def check_token(token: str | None) -> None:
        """`token`: the credentials of an `Authorization: Bearer …` header, None without one."""
        if not secrets:
            return
        if token is None:
            raise Unauthorized("a bearer token is required")
        given = token.encode()
        # Compare with every token (no early exit) so timing says nothing about which one matched.
        ok = False
        for token in secrets:
            ok |= hmac.compare_digest(given, token.encode())
        if not ok:
            raise Unauthorized("the bearer token is not valid")

    auth = [Depends(authorize)]

    # ------------------------------------------------------------------ error answers
    @app.exception_handler(HttpProblem)
    async def _problem(request: Request, exc: HttpProblem) -> JSONResponse:
        project = request.path_params.get("project_id")
        jsonlog.problem(project, request.method, request.url.path, exc.status, exc.error, exc.reason, exc.retry_after)
        if request.url.path.endswith("/health") and isinstance(exc, Unavailable):
            body: dict[str, Any] = HealthDown(reason=exc.reason).model_dump()
        else:
            body = Problem(error=exc.error, reason=exc.reason).model_dump()
        return JSONResponse(body, status_code=exc.status, headers=exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        project = request.path_params.get("project_id")
        try:
            rejection = await gateway.schema_rejection(project, "; ".join(parts) or "invalid request")
        except HttpProblem as problem:
            return await _problem(request, problem)
        return JSONResponse(rejection.model_dump(mode="json"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        words = {404: "not_found", 405: "method_not_allowed"}
        body = Problem(error=words.get(exc.status_code, "http_error"), reason=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        jsonlog.event(
            f"unexpected {type(exc).__name__} on {request.method} {request.url.path}",
            level=40,
            event="internal_error",
            status=500,
        )
        return JSONResponse(
            Problem(error="internal", reason="internal error; see the API log").model_dump(), status_code=500
        )

    # ------------------------------------------------------------------ helpers
    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body_bytes:
            raise PayloadTooLarge(f"body of {length} bytes is over the limit of {max_body_bytes}")
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > max_body_bytes:
                raise PayloadTooLarge(f"body is over the limit of {max_body_bytes} bytes")
        return bytes(buf)

    async def transition(request: Request, path_project: str | None) -> JSONResponse:
        started = time.monotonic()
        if path_project is not None and not PROJECT_ID_RE.fullmatch(path_project):
            rejection = RejectionBody.schema_error("project_id must be 1-64 of [A-Za-z0-9_.-]", None)
            return JSONResponse(rejection.model_dump(mode="json"), status_code=400)
        raw = await read_body(request)
        outcome = await gateway.transition(raw, request.headers, path_project, started)
        return JSONResponse(outcome.answer.model_dump(mode="json"), status_code=outcome.status)

    async def transition_endpoint(scope: Scope, receive: Receive, send: Send, path_project: str | None) -> None:
        """Both transition routes, straight from ASGI (see `SwooshAPI`); answers exactly as the routes would."""
        if path_project is not None:
            scope["path_params"] = {"project_id": path_project}
        request = Request(scope, receive)
        response: Response
        try:
            credentials = await _bearer(request)  # the routes' own security scheme, read the same way
            check_token(credentials.credentials if credentials is not None else None)
            response = await transition(request, path_project)
        except HttpProblem as exc:
            response = await _problem(request, exc)
        except Exception as exc:  # the same last resort as the app's handler for Exception
            response = await _bug(request, exc)
        await response(scope, receive, send)

    app.transition_endpoint = transition_endpoint

    def check_project(project_id: str) -> RejectionBody | None:
        if PROJECT_ID_RE.fullmatch(project_id):
            return None
        return RejectionBody.schema_error("project_id must be 1-64 of [A-Za-z0-9_.-]", None)

    def answer(view: Any) -> JSONResponse:
        if isinstance(view, RejectionBody):
            return JSONResponse(view.model_dump(mode="json"), status_code=400)
        return JSONResponse(view.model_dump(mode="json"))

    def legacy_project(project_id: str | None, x_project_id: str | None) -> str:
        return project_id or x_project_id or gateway.default_project

    # ------------------------------------------------------------------ legacy paths
    @app.post(
        "/transition",
        dependencies=auth,
        status_code=202,
        responses=_TRANSITION_RESPONSES,
        openapi_extra=_ENVELOPE_BODY,
        tags=["legacy"],
        summary="Propose a transition (project from the body, X-Project-Id, or the default project)",
    )
    async def post_transition(
        request: Request,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        x_hlc: Annotated[str | None, Header(alias="X-HLC")] = None,
        x_window_id: Annotated[str | None, Header(alias="X-Window-Id")] = None,
        x_project_id: Annotated[str | None, Header(alias="X-Project-Id")] = None,
        x_swoosh_retry: Annotated[str | None, Header(alias=RETRY_HEADER)] = None,
    ) -> JSONResponse:
        return await transition(request, None)

    @app.get("/state", dependencies=auth, response_model=StateView, responses=_READ_RESPONSES, tags=["legacy"])
    async def get_state(
        project_id: str | None = None,
        projection: Annotated[str | None, Query(description="comma-separated section names, case-insensitive")] = None,
        x_project_id: Annotated[str | None, Header(alias="X-Project-Id")] = None,
    ) -> JSONResponse:
        pid = legacy_project(project_id, x_project_id)
        return answer(check_project(pid) or await gateway.state(pid, projection))

    @app.get("/health", response_model=HealthView, responses=_HEALTH_RESPONSES, tags=["legacy"])
    async def get_health(
        project_id: str | None = None, x_project_id: Annotated[str | None, Header(alias="X-Project-Id")] = None
    ) -> JSONResponse:
        pid = legacy_project(project_id, x_project_id)
        return answer(check_project(pid) or await gateway.health(pid))

    # ------------------------------------------------------------------ /v1
    @app.put(
        "/v1/projects/{project_id}",
        dependencies=auth,
        response_model=ProjectCreated,
        status_code=201,
        responses={200: {"model": ProjectCreated, "description": "the project already exists"}, **_READ_RESPONSES},
        tags=["projects"],
        summary="Create a project (idempotent); its identities come from the keyring",
    )
    async def put_project(project_id: str) -> JSONResponse:
        bad = check_project(project_id)
        if bad is not None:
            return answer(bad)
        created = await gateway.create_project(project_id)
        body = ProjectCreated(project_id=project_id, workflow_id=workflow_id(project_id), created=created)
        return JSONResponse(body.model_dump(), status_code=201 if created else 200)

    @app.post(
        "/v1/projects/{project_id}/transition",
        dependencies=auth,
        status_code=202,
        responses=_TRANSITION_RESPONSES,
        openapi_extra=_ENVELOPE_BODY,
        tags=["projects"],
        summary="Propose a transition to a project",
    )
    async def post_project_transition(
        project_id: str,
        request: Request,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
        x_hlc: Annotated[str | None, Header(alias="X-HLC")] = None,
        x_window_id: Annotated[str | None, Header(alias="X-Window-Id")] = None,
        x_swoosh_retry: Annotated[str | None, Header(alias=RETRY_HEADER)] = None,
    ) -> JSONResponse:
        return await transition(request, project_id)

    @app.get(
        "/v1/projects/{project_id}/state",
        dependencies=auth,
        response_model=StateView,
        responses=_READ_RESPONSES,
        tags=["projects"],
    )
    async def get_project_state(
        project_id: str,
        projection: Annotated[str | None, Query(description="comma-separated section names, case-insensitive")] = None,
    ) -> JSONResponse:
        return answer(check_project(project_id) or await gateway.state(project_id, projection))

    @app.get(
        "/v1/projects/{project_id}/health", response_model=HealthView, responses=_HEALTH_RESPONSES, tags=["projects"]
    )
    async def get_project_health(project_id: str) -> JSONResponse:
        return answer(check_project(project_id) or await gateway.health(project_id))

    @app.get(
        "/v1/projects/{project_id}/decisions",
        dependencies=auth,
        response_model=DecisionsAnswer,
        responses=_READ_RESPONSES,
        tags=["projects"],
    )
    async def get_project_decisions(
        project_id: str,
        after_index: Annotated[int, Query(ge=0, description="records with index > after_index")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> JSONResponse:
        return answer(check_project(project_id) or await gateway.decisions(project_id, after_index, limit))

    @app.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics")
    async def get_metrics() -> Response:
        return Response(gateway.metrics.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    return app
