"""The API's part of a transition's trace: a server span per request that continues the caller's.

With tracing on (`OTEL_TRACES_EXPORTER`, see `workflows/lifecycle/telemetry.py`) FastAPI's routes are
instrumented by OpenTelemetry's FastAPI instrumentation, and the two transition routes, which the
fast path answers before FastAPI's routing, by the same ASGI middleware with the route's template
as the span's name. Either way the W3C `traceparent` a caller sends is the parent, the Temporal
client's plugin carries the context on into the Update, and the span gets the transition's
outcome (`swoosh.*` attributes: project, transition, index, or the rejection's code and failing
guard). With tracing off nothing here is installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from starlette.types import ASGIApp, Receive, Scope, Send

from swoosh.api.models import RejectionBody
from swoosh.workflows.answers import Accepted

# Scrapes and probes would drown the traces that matter.
EXCLUDED_URLS = "/metrics,/livez,/readyz"
FAST_PROJECT_KEY = "swoosh.path_project"
FastEndpoint = Callable[[Scope, Receive, Send, str | None], Awaitable[None]]


def instrument(app: FastAPI) -> None:
    """Instrument the app's routes (FastAPI's routing; the fast path is wrapped by `traced_fast_path`)."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls=EXCLUDED_URLS, exclude_spans=["receive", "send"])


def traced_fast_path(endpoint: FastEndpoint) -> ASGIApp:
    """The fast transition endpoint as an ASGI app inside OpenTelemetry's ASGI middleware."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await endpoint(scope, receive, send, scope.get(FAST_PROJECT_KEY))

    def details(scope: Scope) -> tuple[str, dict[str, Any]]:
        route = "/transition" if scope.get(FAST_PROJECT_KEY) is None else "/v1/projects/{project_id}/transition"
        return f"POST {route}", {"http.route": route}

    middleware: ASGIApp = OpenTelemetryMiddleware(app, default_span_details=details, exclude_spans=["receive", "send"])
    return middleware


def annotate(project_id: str | None, transition: str | None, answer: Accepted | RejectionBody) -> None:
    """The transition's outcome on the request's span (nothing when the request is not traced)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    attributes: dict[str, Any] = {"swoosh.accepted": isinstance(answer, Accepted)}
    if project_id is not None:
        attributes["swoosh.project_id"] = project_id
    if transition is not None:
        attributes["swoosh.transition"] = transition[:64]
    if isinstance(answer, Accepted):
        attributes.update(
            {
                "swoosh.index": answer.index,
                "swoosh.duplicate": answer.duplicate,
                "swoosh.state_post_hash": answer.state_post_hash,
            }
        )
    else:
        attributes["swoosh.error"] = answer.error
        if answer.failing_guard:
            attributes["swoosh.failing_guard"] = answer.failing_guard
    span.set_attributes(attributes)
