"""`swoosh api`: serve the HTTP API (legacy + /v1) with uvicorn on the configured host and port.

Temporal is connected lazily: the API starts (and answers 503 + Retry-After) while Temporal is
still coming up, and creates the default project as soon as it can. When Temporal answers at start
but the namespace is not prepared, it refuses to start and names `swoosh setup`. SIGINT/SIGTERM
stop it gracefully (uvicorn finishes in-flight requests first). It refuses a non-loopback bind
without API tokens unless `--insecure` is given, and reloads its tokens on SIGHUP and whenever a
file they come from changes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn
from temporalio.client import Client
from temporalio.runtime import Runtime

from swoosh.activities.decisions import decision_store
from swoosh.activities.windows import BackbeatWindows
from swoosh.api.server import jsonlog
from swoosh.api.server.admission import Admission
from swoosh.api.server.app import create_app
from swoosh.api.server.http import HttpEdge
from swoosh.api.server.metrics import ApiMetrics
from swoosh.api.server.tokens import TokenSet
from swoosh.worker import logs
from swoosh.worker.keyring_file import load_keyring
from swoosh.worker.settings import Loaded, Settings, load_settings
from swoosh.worker.token_reload import TokenReloader
from swoosh.workflows.errors import ConfigError, TemporalUnreachable
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle import telemetry
from swoosh.workflows.lifecycle.connection import connect, resolve, runtime_with_metrics
from swoosh.workflows.lifecycle.namespace import require_setup
from swoosh.workflows.lifecycle.runtime import MetricsRuntime

GRACEFUL_SHUTDOWN_S = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (default $SWOOSH_CONFIG)")
    parser.add_argument("--host", default=None, help="bind address (default settings api.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default settings api.port, 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--metrics-bind",
        default=None,
        help="Prometheus endpoint for the Temporal SDK's client metrics (default settings api.sdk_metrics_bind: off)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback bind without API tokens (anyone reaching it is admin)",
    )


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses; any other name or address counts as reachable from outside."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refuse_open_bind(host: str, tokens: TokenSet | tuple[object, ...], insecure: bool, what: str = "the API") -> None:
    """Refuse to serve `what` without tokens on an address others can reach, unless `--insecure`."""
    if tokens or insecure or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to serve {what} on {host} without API tokens: anyone who reaches it could create projects "
        "and read every payload. Configure tokens (SWOOSH_API_TOKENS or [[api.tokens]]), bind 127.0.0.1, "
        "or pass --insecure"
    )


def provider(settings: Settings, runtime: Runtime | None = None) -> Callable[[], Awaitable[Client]]:
    """An async function connecting to the configured Temporal (called again after a failure)."""

    async def connect_now() -> Client:
        return await connect(settings.temporal, encryption=settings.encryption, runtime=runtime)

    return connect_now


async def check_setup_at_start(settings: Settings, runtime: Runtime | None, timeout_s: float = 10.0) -> None:
    """Refuse to start on an unprepared namespace (SetupRequired); Temporal unreachable is fine (lazy)."""
    try:
        async with asyncio.timeout(timeout_s):
            client = await connect(settings.temporal, encryption=settings.encryption, runtime=runtime)
    except (TemporalUnreachable, TimeoutError) as err:
        jsonlog.event(f"Temporal not reachable at start; serving 503 until it is: {err}"[:1000], level=30)
        return
    await require_setup(client)


class Server(uvicorn.Server):
    """uvicorn without its own signal capture: the embedding process decides how to stop it.

    uvicorn re-raises a captured SIGINT/SIGTERM after shutting down, which would kill `swoosh dev`
    (it runs the API beside the worker) and make `swoosh api` exit by signal instead of with 0.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(server: uvicorn.Server, reloader: TokenReloader | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (a second signal forces it); reload tokens meanwhile."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.should_exit:
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        async with reloader.running() if reloader is not None else contextlib.nullcontext():
            await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def build_server(
    settings: Settings,
    client: Client | None,
    keyring: Keyring | None,
    host: str | None = None,
    port: int | None = None,
    runtime: Runtime | None = None,
) -> uvicorn.Server:
    """A uvicorn server for the API; `client` shared when given, else connected on demand.

    An API with a client of its own exports that client's SDK metrics: on `runtime`'s endpoint when
    one is given (`--metrics-bind`), else appended to its own `/metrics`. A shared client's are the
    sharing process's (`swoosh dev`: the worker's metrics port).
    """
    api = settings.api
    own = MetricsRuntime("swoosh-api", settings.instance) if client is None and runtime is None else None
    metrics = ApiMetrics(sdk_text=own.sdk_text if own is not None else None)
    app = create_app(
        client if client is not None else provider(settings, own.runtime if own is not None else runtime),
        metrics=metrics,
        task_queue=settings.temporal.task_queue,
        keyring=keyring,
        default_project=settings.api.default_project,
        tokens=settings.api.tokens,
        gateway_keys=settings.api.gateway_key_set(),
        decision_store=decision_store(settings.records, Path(settings.data_dir)),
        windows=BackbeatWindows(settings.backbeat),
        engine_config=settings.engine.config(),
        lifecycle_settings=settings.lifecycle(),
        admission=Admission(
            max_in_flight=api.max_in_flight, max_waiting=api.max_waiting, max_wait_s=api.max_wait_ms / 1000
        ),
        migration=settings.migration,
        max_projects=api.max_projects,
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
        limit_concurrency=api.limit_concurrency,  # beyond it uvicorn answers 503 instead of taking more
    )
    return Server(config)


def reloader_for(server: uvicorn.Server, loaded: Loaded) -> TokenReloader:
    """The token reloader of a server built by `build_server` (its app's edge), loading settings as `loaded` was."""
    return TokenReloader(server_edge(server), loaded.again, loaded.files)


def server_edge(server: uvicorn.Server) -> HttpEdge:
    """The `HttpEdge` of the SWOOSH app a server built by `build_server` serves."""
    edge = getattr(getattr(server.config.app, "state", None), "edge", None)
    if not isinstance(edge, HttpEdge):
        raise TypeError("not a server of the SWOOSH API")
    return edge


def main(args: argparse.Namespace) -> int:
    logs.configure(getattr(logging, str(args.log_level).upper()))
    loaded = load_settings(config_file=args.config)
    settings = loaded.settings
    host = args.host or settings.api.host
    refuse_open_bind(host, settings.api.tokens, args.insecure)
    logs.add_secrets(logs.secret_values(settings))
    telemetry.configure_from_env("swoosh-api")
    keyring = load_keyring(settings.keyring)
    sdk_metrics = settings.api.sdk_metrics_bind if args.metrics_bind is None else args.metrics_bind
    runtime = runtime_with_metrics(sdk_metrics) if sdk_metrics else None
    asyncio.run(check_setup_at_start(settings, runtime))
    server = build_server(settings, None, keyring, args.host, args.port, runtime)
    target = resolve(settings.temporal)
    labels = ", ".join(t.label for t in settings.api.tokens) or "none: no authentication"
    jsonlog.event(
        f"SWOOSH API on http://{server.config.host}:{server.config.port} (Temporal {target.address}, "
        f"namespace {target.namespace}, TLS {target.tls_mode}; admission {settings.api.max_in_flight} in flight "
        f"per project; data {settings.data_dir}; tokens: {labels})",
        event="api_start",
    )
    asyncio.run(serve(server, reloader_for(server, loaded)))
    jsonlog.event("SWOOSH API stopped", event="api_stop")
    return 0
