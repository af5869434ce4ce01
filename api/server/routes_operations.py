"""The process's open routes: liveness, readiness and Prometheus metrics (no token)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from swoosh.api.models import Probe
from swoosh.api.server.metrics import PROMETHEUS_CONTENT_TYPE
from swoosh.api.server.routes_common import GatewayDep

router = APIRouter()
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


@router.get("/metrics", tags=["operations"], response_class=Response, summary="Prometheus metrics")
async def get_metrics(gateway: GatewayDep) -> Response:
    body = await asyncio.to_thread(gateway.metrics.exposition)  # may read the SDK exporter over loopback
    return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)
