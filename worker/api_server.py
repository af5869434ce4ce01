"""`swoosh api`: serve the HTTP API (legacy + /v1) with uvicorn on the configured host and port.

Temporal is connected lazily: the API starts (and answers 503 + Retry-After) while Temporal is
still coming up, and creates the default project as soon as it can. SIGINT/SIGTERM stop it
gracefully (uvicorn finishes in-flight requests first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn
from temporalio.client import Client

from swoosh.activities.decisions import decision_store
from swoosh.api.server import jsonlog
from swoosh.api.server.app import create_app
from swoosh.worker import logs
from swoosh.worker.keyring_file import load_keyring
from swoosh.worker.settings import Settings
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle.connection import connect

GRACEFUL_SHUTDOWN_S = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (default $SWOOSH_CONFIG)")
    parser.add_argument("--host", default=None, help="bind address (default settings api.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default settings api.port, 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def provider(settings: Settings) -> Callable[[], Awaitable[Client]]:
    """An async function connecting to the configured Temporal (called again after a failure)."""

    async def connect_now() -> Client:
        return await connect(settings.temporal)

    return connect_now


class Server(uvicorn.Server):
    """uvicorn without its own signal capture: the embedding process decides how to stop it.

    uvicorn re-raises a captured SIGINT/SIGTERM after shutting down, which would kill `swoosh dev`
    (it runs the API beside the worker) and make `swoosh api` exit by signal instead of with 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(server: uvicorn.Server) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (a second signal forces it)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def build_server(
    settings: Settings, client: Client | None, keyring: Keyring | None, host: str | None = None, port: int | None = None
) -> uvicorn.Server:
    """A uvicorn server for the API; `client` shared when given, else connected on demand."""
    app = create_app(
        client if client is not None else provider(settings),
        task_queue=settings.temporal.task_queue,
        keyring=keyring,
        default_project=settings.api.default_project,
        tokens=settings.api.tokens,
        decision_store=decision_store(settings.records, Path(settings.data_dir)),
        engine_config=settings.engine.config(),
        lifecycle_settings=settings.engine.lifecycle(),
    )
    config = uvicorn.Config(
        app,
        host=host or settings.api.host,
        port=settings.api.port if port is None else port,
        log_config=None,
        access_log=False,
        http="httptools",  # a dependency: the C parser costs less per request than h11
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return Server(config)


def main(args: argparse.Namespace) -> int:
    logs.configure(getattr(logging, str(args.log_level).upper()))
    settings = Settings.load(config_file=args.config)
    keyring = load_keyring(settings.keyring)
    server = build_server(settings, None, keyring, args.host, args.port)
    jsonlog.event(
        f"SWOOSH API on http://{server.config.host}:{server.config.port} (Temporal {settings.temporal.address}; "
        f"data {settings.data_dir})",
        event="api_start",
    )
    asyncio.run(serve(server))
    jsonlog.event("SWOOSH API stopped", event="api_stop")
    return 0
