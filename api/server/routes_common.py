"""What every group of routes shares: response tables, scope dependencies, parameters, answers.

The routes themselves are in `routes_transitions.py`, `routes_projects.py`, `routes_operations.py`
and `routes_migration.py`; `routes.py` puts them together.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from swoosh.api.models import Problem, RejectionBody
from swoosh.api.server.gateway import Gateway
from swoosh.api.server.http import require
from swoosh.api.server.mutation import Answer as RoutedAnswer
from swoosh.api.server.router import MigrationRouter
from swoosh.api.server.signing import Delegation
from swoosh.workflows.answers import Accepted, DryRunAnswer
from swoosh.workflows.ids import PROJECT_ID_RULE, is_project_id

PROBLEMS: dict[int | str, dict[str, Any]] = {
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
TRANSITION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": DryRunAnswer, "description": "`?dry_run=true`: what a real send would be answered; nothing changed"},
    202: {"model": Accepted, "description": "accepted now, or a duplicate of an accepted proposal"},
    400: {"model": RejectionBody, "description": "rejected with a contract code; nothing changed"},
    409: {"model": Problem, "description": "the project's workflow is closed (not at TERMINATED): no transitions"},
    413: {"model": Problem, "description": "body over 1 MiB"},
    **PROBLEMS,
}
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": RejectionBody, "description": "bad query (code schema)"},
    **PROBLEMS,
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
XProjectId = Annotated[str | None, Header(alias="X-Project-Id")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key")]
XHlc = Annotated[str | None, Header(alias="X-HLC")]
XWindowId = Annotated[str | None, Header(alias="X-Window-Id")]


# ---------------------------------------------------------------------- helpers
def check_project(project_id: str) -> RejectionBody | None:
    """A `schema` rejection for a project id that breaks the rule, else None."""
    return None if is_project_id(project_id) else RejectionBody.schema_error(PROJECT_ID_RULE, None)


def answer(view: Any) -> JSONResponse:
    if isinstance(view, RejectionBody):
        return JSONResponse(view.model_dump(mode="json"), status_code=400)
    return JSONResponse(view.model_dump(mode="json"))


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


def routed(answer_: RoutedAnswer) -> JSONResponse:
    return JSONResponse(answer_.body, status_code=answer_.status, headers=answer_.headers)
