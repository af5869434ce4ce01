"""`swoosh codec-server`: serve Temporal's codec protocol for the UI and the `temporal` CLI.

Uses the same encryption keys as every other SWOOSH process (`[encryption]`, `SWOOSH_ENCRYPTION_KEYS`
or its `_FILE` form) and the API's tokens (reloaded the same way). Point the UI at it with the dev
server's `--ui-codec-endpoint`, the UI's "Codec Server" setting, or the CLI's `--codec-endpoint`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging

import uvicorn
from starlette.applications import Starlette

from swoosh.api.server import jsonlog
from swoosh.api.server.codec_server import CodecEdge, create_codec_app
from swoosh.api.server.tokens import TokenSet
from swoosh.worker import logs
from swoosh.worker.api_server import GRACEFUL_SHUTDOWN_S, Server, refuse_open_bind, serve
from swoosh.worker.settings import Settings, load_settings
from swoosh.worker.token_reload import TokenReloader
from swoosh.workflows.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (default $SWOOSH_CONFIG)")
    parser.add_argument("--host", default=None, help="bind address (default settings codec_server.host)")
    parser.add_argument("--port", type=int, default=None, help="port (default settings codec_server.port)")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without API tokens")


def codec_app(settings: Settings, origins: tuple[str, ...] | None = None) -> Starlette:
    """The codec server app for these settings; ConfigError when encryption is off."""
    codec = settings.encryption.codec()
    if codec is None:
        raise ConfigError("encryption is off (no SWOOSH_ENCRYPTION_KEYS): a codec server would have nothing to decode")
    return create_codec_app(
        codec,
        tokens=TokenSet.of(settings.api.tokens),
        origins=settings.codec_server.origins if origins is None else origins,
    )


def build_codec_server(settings: Settings, app: Starlette, host: str | None = None, port: int | None = None) -> Server:
    config = uvicorn.Config(
        app,
        host=host or settings.codec_server.host,
        port=settings.codec_server.port if port is None else port,
        log_config=None,
        access_log=False,
        http="httptools",
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return Server(config)


def codec_edge(app: Starlette) -> CodecEdge:
    edge = app.state.edge
    assert isinstance(edge, CodecEdge)
    return edge


def main(args: argparse.Namespace) -> int:
    logs.configure(logging.INFO)
    loaded = load_settings(config_file=args.config)
    settings = loaded.settings
    host = args.host or settings.codec_server.host
    refuse_open_bind(host, settings.api.tokens, args.insecure, what="the codec server")
    app = codec_app(settings)
    server = build_codec_server(settings, app, args.host, args.port)
    reloader = TokenReloader(codec_edge(app), loaded.again, loaded.files)
    keys = ", ".join(settings.encryption.key_ids())
    jsonlog.event(
        f"SWOOSH codec server on http://{server.config.host}:{server.config.port} (keys {keys}; "
        f"UI origins {', '.join(settings.codec_server.origins) or 'none'})",
        event="codec_server_start",
    )
    asyncio.run(serve(server, reloader))
    jsonlog.event("SWOOSH codec server stopped", event="codec_server_stop")
    return 0
