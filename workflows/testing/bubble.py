"""A BUBBLE stand-in for tests: the decision-record endpoint SWOOSH's BUBBLE store speaks to, in memory.

It applies the chain rule a real BUBBLE server should (every overlapping index compared, new records
linked to the one before) and answers 409 on a fork or gap; it keeps snapshot receipts by interval
start, refusing a different one at the same start. Optional bearer token and TLS.

    async with serve_bubble(token="t") as url:
        store = BubbleStore(url, token="t")
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from temporalio.exceptions import ApplicationError

from swoosh.activities.decisions import plan_delivery, same_receipt
from swoosh.workflows.messages import SINK_GAP_ERROR_TYPE
from swoosh.workflows.testing.postgres import free_port


def bubble_app(token: str | None = None) -> FastAPI:
    app = FastAPI(title="BUBBLE stand-in")
    chains: dict[str, list[dict[str, Any]]] = {}
    app.state.chains = chains
    app.state.requests = 0

    def authorized(request: Request) -> bool:
        app.state.requests += 1
        return token is None or request.headers.get("authorization") == f"Bearer {token}"

    @app.get("/projects/{project_id}/decisions")
    async def page(project_id: str, request: Request, after_index: int = 0, limit: int = 100) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        chain = chains.get(project_id, [])
        return JSONResponse({"records": chain[max(0, after_index) : max(0, after_index) + max(0, limit)]})

    @app.post("/projects/{project_id}/decisions")
    async def deliver(project_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            return JSONResponse({"error": "schema", "reason": "records: a non-empty list"}, status_code=400)
        chain = chains.setdefault(project_id, [])
        held = {int(r["index"]): str(r["dr_hash"]) for r in chain}
        try:
            fresh, skipped = plan_delivery(project_id, records, held, len(chain))
        except ApplicationError as err:
            details = err.details[0] if err.details and isinstance(err.details[0], dict) else {}
            kind = "gap" if err.type == SINK_GAP_ERROR_TYPE else "fork"
            return JSONResponse({"error": kind, "index": details.get("index"), "reason": str(err)}, status_code=409)
        chain.extend(fresh)
        return JSONResponse({"delivered": len(fresh), "skipped": skipped, "last_index": len(chain)})

    receipts: dict[str, dict[int, dict[str, Any]]] = {}
    app.state.receipts = receipts

    @app.get("/projects/{project_id}/receipts")
    async def read_receipts(project_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        held = receipts.get(project_id, {})
        return JSONResponse({"receipts": [held[k] for k in sorted(held)]})

    @app.post("/projects/{project_id}/receipts")
    async def store_receipts(project_id: str, request: Request) -> JSONResponse:
        if not authorized(request):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        offered = body.get("receipts") if isinstance(body, dict) else None
        if not isinstance(offered, list) or not all(isinstance(r, dict) for r in offered):
            return JSONResponse({"error": "schema", "reason": "receipts: a list of objects"}, status_code=400)
        held = receipts.setdefault(project_id, {})
        for r in offered:
            have = held.get(int(r["from_index"]))
            if have is not None and not same_receipt(have, r):
                return JSONResponse(
                    {"error": "fork", "index": r["from_index"], "reason": "another receipt starts there"},
                    status_code=409,
                )
            held.setdefault(int(r["from_index"]), r)
        return JSONResponse({"stored": len(offered)})

    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the test process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def serve_bubble(
    *,
    token: str | None = None,
    host: str = "127.0.0.1",
    certfile: Path | None = None,
    keyfile: Path | None = None,
    app: FastAPI | None = None,
) -> AsyncIterator[str]:
    """Serve a BUBBLE stand-in on a free port until the block ends; yields its base URL."""
    port = free_port(host)
    config = uvicorn.Config(
        app or bubble_app(token),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        ssl_certfile=str(certfile) if certfile else None,
        ssl_keyfile=str(keyfile) if keyfile else None,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"{'https' if certfile else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        await task


__all__ = ["bubble_app", "serve_bubble"]
