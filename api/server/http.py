"""What a request crosses besides its route: bearer auth, the body limit and the error answers.

One implementation for FastAPI's routes (a dependency and the app's exception handlers) and for the
fast transition path (`fastpath.py`), so both answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from swoosh.api.models import HealthDown, Problem
from swoosh.api.server import jsonlog
from swoosh.api.server.gateway import Gateway
from swoosh.api.server.problems import (
    ForbiddenProblem,
    HttpProblem,
    PayloadTooLargeProblem,
    UnauthorizedProblem,
    UnavailableProblem,
)
from swoosh.api.server.tokens import ApiToken, Principal, Scope, TokenSet

MAX_BODY_BYTES = 1024 * 1024

BEARER = HTTPBearer(auto_error=False, description="an API token (settings api.tokens; only when tokens are configured)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]


class HttpEdge:
    """Bearer tokens and their scopes, the body limit and the rendering of every failure as the contract's JSON."""

    def __init__(
        self,
        gateway: Gateway,
        tokens: TokenSet | Iterable[ApiToken | str | SecretStr] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.gateway = gateway
        self.max_body_bytes = max_body_bytes
        self.tokens = tokens if isinstance(tokens, TokenSet) else TokenSet.of(tokens)

    def install(self, app: FastAPI) -> None:
        """Make this the app's edge: its exception handlers, and the one `require` finds."""
        app.state.edge = self
        app.exception_handler(HttpProblem)(self.render_problem)
        app.exception_handler(RequestValidationError)(self.render_invalid)
        app.exception_handler(StarletteHTTPException)(self.render_http)
        app.exception_handler(Exception)(self.render_bug)

    # ------------------------------------------------------------------ requests
    def replace_tokens(self, tokens: TokenSet) -> None:
        """Accept `tokens` from now on (a reload); requests already authenticated keep their principal."""
        self.tokens = tokens

    def check_token(self, token: str | None) -> Principal:
        """`token`: the credentials of an `Authorization: Bearer …` header, None without one."""
        principal = self.tokens.authenticate(token)
        if principal is None:
            raise UnauthorizedProblem(
                "a bearer token is required" if token is None else "the bearer token is not valid"
            )
        return principal

    async def authorize(self, request: Request) -> Principal:
        """The bearer check outside FastAPI's routing, reading the header with the routes' own scheme."""
        credentials = await BEARER(request)
        principal = self.check_token(credentials.credentials if credentials is not None else None)
        request.state.principal = principal
        return principal

    async def read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it is known to be over the limit."""
        limit = self.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            raise PayloadTooLargeProblem(f"body of {length} bytes is over the limit of {limit}")
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                raise PayloadTooLargeProblem(f"body is over the limit of {limit} bytes")
        return bytes(buf)

    # ------------------------------------------------------------------ error answers
    async def render_problem(self, request: Request, exc: HttpProblem) -> JSONResponse:
        """401/404/413/429/503/500 as a `Problem` (a health path's 503 as `HealthDown`), logged."""
        project = request.path_params.get("project_id")
        # A 500 is a bug: log the traceback of what Temporal's client raised (the problem was raised from it).
        cause = (exc.__context__ or exc) if exc.status == 500 else None
        jsonlog.problem(
            project,
            request.method,
            request.url.path,
            exc.status,
            exc.error,
            exc.reason,
            exc.retry_after,
            token=principal_label(request),
            exc=cause,
        )
        if request.url.path.endswith("/health") and isinstance(exc, UnavailableProblem):
            body: dict[str, Any] = HealthDown(reason=exc.reason).model_dump()
        else:
            body = Problem(error=exc.error, reason=exc.reason).model_dump()
        return JSONResponse(body, status_code=exc.status, headers=exc.headers())

    async def render_invalid(self, request: Request, exc: RequestValidationError) -> JSONResponse:
        """A request FastAPI could not read (query, path, headers): a 400 `schema` rejection."""
        parts = []
        for e in exc.errors()[:3]:
            loc = ".".join(str(x) for x in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', 'invalid')}")
        project = request.path_params.get("project_id")
        try:
            rejection = await self.gateway.schema_rejection(project, "; ".join(parts) or "invalid request")
        except HttpProblem as problem:
            return await self.render_problem(request, problem)
        return JSONResponse(rejection.model_dump(mode="json"), status_code=400)

    async def render_http(self, request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own 404 (no route) and 405 (wrong method) in the `Problem` shape."""
        words = {404: "not_found", 405: "method_not_allowed"}
        body = Problem(error=words.get(exc.status_code, "http_error"), reason=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    async def render_bug(self, request: Request, exc: Exception) -> JSONResponse:
        """The last resort: a bug is a 500 that says nothing about its cause; the log has its traceback."""
        jsonlog.event(
            f"unexpected {type(exc).__name__} on {request.method} {request.url.path}",
            level=40,
            exc=exc,
            event="internal_error",
            method=request.method,
            path=request.url.path,
            status=500,
        )
        return JSONResponse(
            Problem(error="internal", reason="internal error; see the API log").model_dump(), status_code=500
        )


def edge_of(request: Request) -> HttpEdge:
    """The edge `HttpEdge.install` put on the request's app."""
    edge: HttpEdge = request.app.state.edge
    return edge


def principal_label(request: Request) -> str | None:
    """The label of the request's token (what logs show of it), None before authentication."""
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.label if principal is not None else None


def principal_of(request: Request) -> Principal:
    """The principal `require` (or the fast path) authenticated for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route declared without `require`: a bug, never open by accident
        raise UnauthorizedProblem("this route did not authenticate its caller")
    return principal


def require(scope: Scope, *, project_param: str | None = "project_id") -> Callable[..., Awaitable[Principal]]:
    """A route dependency: a valid bearer token holding `scope` (on the path's project, when it has one).

    Routes whose project is not in the path (legacy `/transition`, `/state`) check the project
    themselves with `Principal.may` once they know it.
    """

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        principal = edge_of(request).check_token(credentials.credentials if credentials is not None else None)
        request.state.principal = principal
        project = request.path_params.get(project_param) if project_param else None
        if not principal.may(scope, project):
            raise ForbiddenProblem(forbidden_reason(principal, scope, project))
        return principal

    return dependency


def forbidden_reason(principal: Principal, scope: Scope, project_id: str | None) -> str:
    where = f" on project {project_id}" if project_id is not None else ""
    return f"token {principal.label} does not hold the {scope} scope{where}"
