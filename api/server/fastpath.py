"""The two transition routes answered straight from ASGI, before FastAPI's routing.

Transitions are the hot path: every one is a request. FastAPI's routing, dependency solving and
middleware layers cost more CPU per request here than all of SWOOSH's own API work (about 0.35 ms
of the API's 2.7 ms, measured under `make bench`). The routes stay declared (they define the
OpenAPI operations and serve requests under a root path); a request they would match is answered
by `FastTransitions` instead, with the routes' own bearer and scope checks, body limit, handler and error
answers (`http.HttpEdge`, `routes_transitions.answer_transition`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swoosh.api.server.gateway import Gateway
from swoosh.api.server.http import HttpEdge, forbidden_reason
from swoosh.api.server.problems import ForbiddenProblem, HttpProblem
from swoosh.api.server.routes_transitions import answer_transition
from swoosh.api.server.tracing import FAST_PROJECT_KEY

TransitionEndpoint = Callable[[Scope, Receive, Send, str | None], Awaitable[None]]
_V1_PROJECTS, _TRANSITION = "/v1/projects/", "/transition"


class SwooshAPI(FastAPI):
    """FastAPI, with the two transition routes answered by `transition_endpoint` when one is set.

    `traced_transitions` (set when tracing is on) wraps that endpoint in OpenTelemetry's ASGI
    middleware, which FastAPI's instrumentation cannot do for requests it never routes.
    `responded` counts every answer's status code.
    """

    transition_endpoint: TransitionEndpoint | None = None
    traced_transitions: ASGIApp | None = None
    responded: Callable[[int], None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.responded is not None and scope["type"] == "http":
            send = _counting(send, self.responded)
        endpoint = self.transition_endpoint
        if endpoint is None or scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return await self._routed(scope, receive, send)
        path: str = scope["path"]
        project_id: str | None = None
        if path != _TRANSITION:
            if not (path.startswith(_V1_PROJECTS) and path.endswith(_TRANSITION)):
                return await self._routed(scope, receive, send)
            project_id = path[len(_V1_PROJECTS) : -len(_TRANSITION)]
            if not project_id or "/" in project_id:
                return await self._routed(scope, receive, send)
        scope["app"] = self  # as Starlette sets it for its routes
        if self.traced_transitions is not None:
            scope[FAST_PROJECT_KEY] = project_id
            return await self.traced_transitions(scope, receive, send)
        await endpoint(scope, receive, send, project_id)

    async def _routed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's own handling. Starlette answers a bug with the app's 500 handler (which logs it with its
        traceback) and then raises it again for the server, and uvicorn would close the connection under
        the answer and log the same bug once more: the answer is sent, so the bug stops here."""
        try:
            await super().__call__(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise


def _counting(send: Send, count: Callable[[int], None]) -> Send:
    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            count(int(message["status"]))
        await send(message)

    return counting_send


class FastTransitions:
    """A `TransitionEndpoint` answering exactly as the transition routes would."""

    def __init__(self, edge: HttpEdge, gateway: Gateway) -> None:
        self.edge = edge
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send, path_project: str | None) -> None:
        if path_project is not None:
            scope["path_params"] = {"project_id": path_project}
        request = Request(scope, receive)
        response: Response
        try:
            principal = await self.edge.authorize(request)
            if path_project is not None and not principal.may("propose", path_project):
                raise ForbiddenProblem(forbidden_reason(principal, "propose", path_project))
            response = await answer_transition(request, path_project, self.edge, self.gateway)
        except HttpProblem as exc:
            response = await self.edge.render_problem(request, exc)
        except Exception as exc:  # the same last resort as the app's handler for Exception
            response = await self.edge.render_bug(request, exc)
        await response(scope, receive, send)
