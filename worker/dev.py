"""`swoosh dev` (what `make run` runs): Temporal dev server + worker + API on loopback, persisted locally.

Everything lives under the data folder (default `.swoosh/`): the dev server's SQLite file, the
decision-record files, the dev licence and, unless SWOOSH_KEYRING names one, a generated dev
keyring with one key file per role. Payloads are encrypted (unless `--no-encryption`): with no
`[encryption]` keys configured, a development key is generated in `encryption.key` (mode 0600), and
a codec server started beside the API lets the Temporal UI show them decrypted. Stopping with Ctrl-C
shuts everything down cleanly; after a `kill -9` of the whole process group, running it again
resumes every project from the SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import uvicorn
from pydantic import SecretStr
from temporalio.client import Client

from swoosh.activities.kaching import create_dev_license
from swoosh.activities.receipts import ReceiptSettings, write_dev_receipt_key
from swoosh.api.client import DevKeyring, dev_keyring
from swoosh.worker.api_server import refuse_open_bind
from swoosh.worker.keyring_file import load_keyring
from swoosh.worker.run_worker import DEFAULT_METRICS_BIND, running_worker, start_metrics
from swoosh.worker.settings import Loaded, Settings, load_settings
from swoosh.worker.token_reload import TokenReloader
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle import telemetry
from swoosh.workflows.lifecycle.client import ensure_project, read_state
from swoosh.workflows.lifecycle.codec import EncryptionSettings, new_key_entry
from swoosh.workflows.lifecycle.connection import TemporalTarget, connect, resolve
from swoosh.workflows.lifecycle.runtime import MetricsRuntime
from swoosh.workflows.testing.environment import binary, register_search_attributes, search_attribute_flags

DEV_KEY_FILE = "encryption.key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (else $SWOOSH_CONFIG)")
    parser.add_argument("--ui-port", type=int, default=None, help="Temporal UI port (default dev.ui_port)")
    parser.add_argument(
        "--metrics-bind",
        default=None,
        help=f"worker metrics endpoint (default settings worker.metrics_bind, {DEFAULT_METRICS_BIND}; empty = none)",
    )
    parser.add_argument("--no-sticky", action="store_true", help="worker without sticky cache")
    parser.add_argument(
        "--no-encryption",
        action="store_true",
        help="keep payloads in plaintext (default: a development key in <data_dir>/encryption.key)",
    )
    parser.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback API bind without API tokens (anyone is admin)"
    )


def ensure_dev_keyring(data_dir: Path, configured: Path | None) -> DevKeyring:
    """The configured keyring (checked now, to fail early), or the generated development one."""
    if configured is not None:
        load_keyring(configured)
        return DevKeyring(configured, None, False)
    return dev_keyring(data_dir)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def local_target(settings: Settings) -> TemporalTarget:
    """The dev server this command starts: `temporal.address`/`namespace` only, no TLS, no API key.

    Temporal's client environment (`TEMPORAL_*`, profiles) is for reaching a cluster, not for the
    server `swoosh dev` runs itself, so it is ignored here.
    """
    return resolve(settings.temporal, client_environment=False)


def start_dev_server(
    settings: Settings,
    ui_port: int,
    metrics_bind: str = "",
    codec_endpoint: str | None = None,
    *,
    check_api: bool = True,
) -> subprocess.Popen[bytes]:
    """The Temporal dev server, listening on exactly `temporal.address` (its host and port), UI on `ui_port`.

    With `codec_endpoint` the UI decodes payloads through that codec server (encrypted histories readable).
    """
    target = local_target(settings)
    host, _, port = target.address.rpartition(":")
    wanted = [("SWOOSH_TEMPORAL_ADDRESS", host, int(port)), ("SWOOSH_DEV_UI_PORT", host, ui_port)]
    if check_api:  # (`run_dev` holds the API's socket already)
        wanted.append(("SWOOSH_API_PORT", settings.api.host, settings.api.port))
    if codec_endpoint is not None:
        wanted.append(("SWOOSH_CODEC_SERVER_PORT", settings.codec_server.host, settings.codec_server.port))
    if metrics_bind:
        m_host, _, m_port = metrics_bind.rpartition(":")
        wanted.append(("SWOOSH_WORKER_METRICS_BIND", m_host, int(m_port)))
    for setting, h, p in wanted:
        if _port_open(h, p):
            raise SystemExit(
                f"swoosh dev: {h}:{p} is already in use (is another `make run` running?); "
                f"choose another with {setting} (see docs/providers.md#settings)"
            )
    data_dir = Path(settings.data_dir)
    log = (data_dir / "temporal.log").open("ab")
    cmd = [
        binary("temporal"), "server", "start-dev",
        "--ip", host, "--port", port, "--ui-port", str(ui_port),
        "--db-filename", str(data_dir / "temporal.db"),
        "--namespace", target.namespace,
        "--log-level", "warn",
        *search_attribute_flags(),
        *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
    ]  # fmt: skip
    # The dev server reads OTEL_* too (and refuses exporters it lacks, such as `console`): they are
    # meant for SWOOSH's processes, so it starts without them.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


async def _wait_ready(settings: Settings, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    host, _, port = local_target(settings).address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"swoosh dev: the Temporal dev server exited ({proc.returncode}); see {settings.data_dir}/temporal.log"
            )
        if _port_open(host, int(port)):
            return
        await asyncio.sleep(0.2)
    raise SystemExit("swoosh dev: the Temporal dev server did not start in time")


def ensure_dev_encryption(data_dir: Path, settings: Settings) -> tuple[Settings, Path | None]:
    """The configured encryption keys, or a development key kept in `<data_dir>/encryption.key` (mode 0600).

    Returns the settings to run with and the key file when it is the generated one.
    """
    if settings.encryption.enabled:
        return settings, None
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        entry = new_key_entry(time.strftime("dev-%Y%m%d", time.gmtime()))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(entry + "\n")
    entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    try:
        encryption = EncryptionSettings(keys=tuple(SecretStr(e) for e in entries))
    except ValueError as err:
        raise ConfigError(f"{path}: not a key file ({str(err).splitlines()[-1]})") from None
    return settings.model_copy(update={"encryption": encryption}), path


def codec_origins(settings: Settings, ui_port: int) -> tuple[str, ...]:
    """The configured UI origins plus this dev server's own UI."""
    host = local_target(settings).address.rpartition(":")[0]
    own = (f"http://{host}:{ui_port}", f"http://localhost:{ui_port}", f"http://127.0.0.1:{ui_port}")
    return tuple(dict.fromkeys((*settings.codec_server.origins, *own)))


async def run_dev(
    settings: Settings,
    ui_port: int,
    metrics_bind: str,
    no_sticky: bool,
    config: Loaded | None = None,
    encrypt: bool = True,
) -> None:
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    dev_keyring = ensure_dev_keyring(data_dir, settings.keyring)
    keyring: Keyring = load_keyring(dev_keyring.path)
    settings = settings.model_copy(update={"keyring": dev_keyring.path})
    if settings.receipts.key is None and settings.receipts.key_file is None:
        # Snapshot receipts are signed with a development key unless one is configured.
        key_file, _ = write_dev_receipt_key(data_dir / "dev")
        settings = settings.model_copy(update={"receipts": ReceiptSettings(key_file=key_file)})
    dev_key = None
    if encrypt:
        settings, dev_key = ensure_dev_encryption(data_dir, settings)
    if settings.kaching.mode == "embedded":
        create_dev_license(data_dir)
    # Hold the API's port from now on: between the check and the bind, any process on the machine could
    # take it (ports above 32767 are handed out to outgoing connections), and uvicorn exits the whole
    # process on a failed bind — stranding the worker and the dev server.
    api_socket = bind_api_socket(settings)
    try:
        codec_url = f"http://{settings.codec_server.host}:{settings.codec_server.port}"
        codec_endpoint = codec_url if settings.encryption.enabled else None
        proc = start_dev_server(settings, ui_port, metrics_bind, codec_endpoint, check_api=False)
    except BaseException:
        api_socket.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics_server = None
    try:
        await _wait_ready(settings, proc)
        telemetry.configure_from_env("swoosh-dev")
        metrics = MetricsRuntime("swoosh-dev", settings.instance)
        client = None
        for _ in range(100):
            try:
                client = await connect(
                    settings.temporal, encryption=settings.encryption, runtime=metrics.runtime, client_environment=False
                )
                break
            except RuntimeError:
                await asyncio.sleep(0.2)
        if client is None:
            raise SystemExit("swoosh dev: cannot connect to the Temporal dev server")
        await register_search_attributes(client)
        metrics_server = await start_metrics(metrics, settings, metrics_bind)
        async with running_worker(settings, client, no_sticky=no_sticky):
            project = settings.api.default_project
            await ensure_project(
                client, project, keyring, settings.temporal.task_queue, settings.engine.config(),
                settings.lifecycle(),
            )  # fmt: skip
            state = await read_state(client, project)
            api = await start_api(settings, client, keyring, config, sock=api_socket)
            codec = await start_codec_server(settings, ui_port, config) if settings.encryption.enabled else None
            print(_banner(settings, ui_port, metrics_bind, dev_keyring, project, state.hash, state.index), flush=True)
            if settings.encryption.enabled:
                print(_encryption_banner(settings, codec_url, dev_key), flush=True)
            try:
                await stop.wait()
            finally:
                if codec is not None:
                    await codec.stop()
                await api.stop()
    finally:
        print("swoosh dev: stopping", flush=True)
        if metrics_server is not None:
            await metrics_server.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        api_socket.close()
        print("swoosh dev: stopped", flush=True)


class _Api:
    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
        self.server, self.task = server, task

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def bind_api_socket(settings: Settings) -> socket.socket:
    """The API's listening socket, bound now (SystemExit naming the setting when the port is taken)."""
    host, port = settings.api.host, settings.api.port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # only a listening socket keeps the port: other SO_REUSEADDR binds still succeed
    except OSError as err:
        sock.close()
        raise SystemExit(
            f"swoosh dev: cannot listen on {host}:{port} ({err.strerror}); choose another port with SWOOSH_API_PORT "
            "(see docs/providers.md#settings)"
        ) from None
    return sock


async def start_api(
    settings: Settings,
    client: Client,
    keyring: Keyring,
    config: Loaded | None = None,
    sock: socket.socket | None = None,
) -> _Api:
    """Serve the HTTP API in this process (uvicorn), sharing the Temporal client; tokens reload as in `swoosh api`.

    `sock`: a socket already bound to the API's address, to serve on (else uvicorn binds it).
    """
    from swoosh.worker.api_server import build_server, server_edge

    server = build_server(settings, client, keyring)
    reloader = TokenReloader(server_edge(server), _reload_from(config), config.files if config else ())

    async def serve() -> None:
        async with reloader.running():
            await server.serve(sockets=[sock] if sock is not None else None)

    task = asyncio.create_task(serve())
    for _ in range(200):
        if server.started:
            return _Api(server, task)
        if task.done():
            break
        await asyncio.sleep(0.05)
    raise SystemExit(f"swoosh dev: the API could not start on {settings.api.host}:{settings.api.port}")


async def start_codec_server(settings: Settings, ui_port: int, config: Loaded | None = None) -> _Api:
    """Serve `swoosh codec-server` in this process, for the dev server's UI (CORS for its origin)."""
    from swoosh.worker.codec_server import build_codec_server, codec_app, codec_edge

    app = codec_app(settings, codec_origins(settings, ui_port))
    server = build_codec_server(settings, app)
    reloader = TokenReloader(codec_edge(app), _reload_from(config), config.files if config else ())

    async def serve() -> None:
        async with reloader.running():
            await server.serve()

    task = asyncio.create_task(serve())
    for _ in range(200):
        if server.started:
            return _Api(server, task)
        if task.done():
            break
        await asyncio.sleep(0.05)
    where = f"{settings.codec_server.host}:{settings.codec_server.port}"
    raise SystemExit(f"swoosh dev: the codec server could not start on {where} (choose SWOOSH_CODEC_SERVER_PORT)")


def _encryption_banner(settings: Settings, codec_url: str, key_file: Path | None) -> str:
    keys = ", ".join(settings.encryption.key_ids())
    where = f"key file {key_file} (generated for development)" if key_file else "configured keys"
    lines = [
        f"  Encryption   on: payloads in Temporal are AES-256-GCM encrypted ({keys}; {where})",
        f"  Codec server {codec_url}   (the UI decodes through it; temporal CLI: --codec-endpoint {codec_url})",
    ]
    if key_file is not None:
        lines.append(
            f"               swoosh replay/audit read these histories with SWOOSH_ENCRYPTION_KEYS_FILE={key_file}"
        )
    if settings.api.tokens:
        lines.append(
            "               API tokens are set: the codec server wants one (temporal CLI: --codec-auth 'Bearer …')"
        )
    return "\n".join([*lines, ""])


def _banner(
    settings: Settings, ui_port: int, metrics_bind: str, kr: DevKeyring, project: str, head: str, index: int
) -> str:
    target = local_target(settings)
    host = target.address.rpartition(":")[0]
    lines = [
        "",
        "SWOOSH is running (Ctrl-C stops everything)",
        f"  API          http://{settings.api.host}:{settings.api.port}   (GET /state, POST /transition, /v1/…)",
        f"  Temporal UI  http://{host}:{ui_port}/namespaces/{target.namespace}/workflows",
        f"  Temporal     {target.address}   (SQLite: {Path(settings.data_dir) / 'temporal.db'})",
        f"  Data         {settings.data_dir}   (decision records in decisions/, dev keys in dev/)",
        f"  Metrics      {f'http://{metrics_bind}/metrics   and ' if metrics_bind else ''}"
        f"http://{settings.api.host}:{settings.api.port}/metrics",
        f"  Keyring      {kr.path}"
        + ("   (generated for development; keys in " + str(kr.keys_dir) + ")" if kr.generated else ""),
        f"  Receipts     signed with {settings.receipts.key_file or 'the key in SWOOSH_RECEIPTS_KEY'}",
        f"  Project      {project}: index {index}, head {head}",
        "",
        "Next, in a second terminal in this folder (with the same SWOOSH_* variables, if you set any):",
        "  .venv/bin/swoosh demo      # a new project into EXECUTION and once around the loop, step by step",
        "",
    ]
    return "\n".join(lines)


def _reload_from(config: Loaded | None) -> Callable[[], Loaded]:
    def reload() -> Loaded:
        if config is None:
            raise ConfigError("no settings source to reload from")
        return config.again()

    return reload


def main(args: argparse.Namespace) -> int:
    loaded = load_settings(config_file=args.config)
    settings = loaded.settings
    refuse_open_bind(settings.api.host, settings.api.tokens, args.insecure)
    ui_port = settings.dev.ui_port if args.ui_port is None else args.ui_port
    metrics_bind = settings.worker.metrics_bind if args.metrics_bind is None else args.metrics_bind
    try:
        asyncio.run(run_dev(settings, ui_port, metrics_bind, args.no_sticky, loaded, encrypt=not args.no_encryption))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(0)
