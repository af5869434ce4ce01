"""One way to reach Temporal for every SWOOSH process and tool: `connect()` and the data converter.

The worker, the API, `swoosh setup`, `swoosh replay`, `swoosh audit`, the dev stack and the chaos
harness all connect here, so what a payload looks like on the wire (pydantic JSON, encrypted with
the `[encryption]` keys when they are set: `codec.py`) and how the cluster is reached are decided once.

Where the cluster is and how to reach it comes from Temporal's own client configuration
(`temporalio.envconfig`: the TOML profile file and the `TEMPORAL_*` variables, e.g. `TEMPORAL_ADDRESS`,
`TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_GRPC_META_*`, `TEMPORAL_PROFILE`,
`TEMPORAL_CONFIG_FILE`), with SWOOSH's own `temporal.*` settings (`SWOOSH_TEMPORAL_*`) over it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from swoosh.workflows.errors import ConfigError, TemporalUnreachable
from swoosh.workflows.lifecycle import telemetry
from swoosh.workflows.lifecycle.codec import EncryptionSettings

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_NAMESPACE = "default"
_ADDRESS = re.compile(r"^\S+:\d{1,5}$")
_HEADER = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class TemporalSettings(BaseModel):
    """How to reach the Temporal frontend, and which task queue SWOOSH's workers poll.

    Every field left unset falls back to Temporal's own client configuration (profile file and
    `TEMPORAL_*` variables), then to a local dev server (`127.0.0.1:7233`, namespace `default`, no TLS).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str | None = None
    namespace: str | None = Field(default=None, min_length=1)
    task_queue: str = Field(default="swoosh", min_length=1)
    profile: str | None = Field(default=None, min_length=1)
    config_file: Path | None = None
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    tls: bool | None = None
    tls_server_ca_cert_path: Path | None = None
    tls_client_cert_path: Path | None = None
    tls_client_key_path: Path | None = None
    tls_server_name: str | None = Field(default=None, min_length=1)
    grpc_meta: dict[str, SecretStr] = Field(default_factory=dict)  # values may be credentials
    connect_timeout_ms: int = Field(default=10_000, ge=100, le=300_000)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _ADDRESS.match(value):
            raise ValueError("must be host:port")
        return value

    @field_validator("grpc_meta")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        bad = [k for k in value if not _HEADER.match(k) or k.endswith("-bin")]
        if bad:
            raise ValueError(f"gRPC metadata names must be lower-case ASCII header names: {', '.join(sorted(bad))}")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> TemporalSettings:
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set api_key or api_key_file, not both")
        if (self.tls_client_cert_path is None) != (self.tls_client_key_path is None):
            raise ValueError("a client certificate needs its key: set tls_client_cert_path and tls_client_key_path")
        return self


@dataclass(frozen=True)
class TemporalTarget:
    """The cluster a process connects to, resolved from the settings and Temporal's client configuration."""

    address: str
    namespace: str
    tls: bool | TLSConfig
    api_key: str | None = field(default=None, repr=False)
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: timedelta = timedelta(seconds=10)

    @property
    def tls_mode(self) -> str:
        """`off`, `on` (server authenticated) or `mutual` (a client certificate too)."""
        if self.tls is False:
            return "off"
        if isinstance(self.tls, TLSConfig) and self.tls.client_cert is not None:
            return "mutual"
        return "on"

    def describe(self) -> dict[str, Any]:
        """What is safe to log about the connection: never the API key or metadata values."""
        return {
            "address": self.address,
            "namespace": self.namespace,
            "tls": self.tls_mode,
            "api_key": "set" if self.api_key else "none",
            "grpc_meta": sorted(self.rpc_metadata),
        }


def resolve(
    settings: TemporalSettings, environ: Mapping[str, str] | None = None, *, client_environment: bool = True
) -> TemporalTarget:
    """The target: SWOOSH's settings over Temporal's client configuration; ConfigError when unusable.

    `client_environment=False` ignores Temporal's profile file and `TEMPORAL_*` variables (used by
    `swoosh dev`, which connects to the dev server it started itself).
    """
    env = os.environ if environ is None else environ
    profile = _profile(settings, env) if client_environment else ClientConfigProfile()
    base_tls = profile.tls if profile.tls is not None else ClientConfigTLS()
    api_key = _api_key(settings) or profile.api_key or None
    tls_files = (settings.tls_server_ca_cert_path, settings.tls_client_cert_path, settings.tls_server_name)
    if settings.tls is False:
        tls: bool | TLSConfig = False
    elif (
        settings.tls
        or any(v is not None for v in tls_files)
        or (profile.tls is not None and profile.tls.disabled is not True)
        or (api_key is not None and base_tls.disabled is not True)
    ):
        tls = _tls_config(settings, base_tls)
    else:
        tls = False
    return TemporalTarget(
        address=settings.address or profile.address or DEFAULT_ADDRESS,
        namespace=settings.namespace or profile.namespace or DEFAULT_NAMESPACE,
        tls=tls,
        api_key=api_key,
        rpc_metadata={**profile.grpc_meta, **{k: v.get_secret_value() for k, v in settings.grpc_meta.items()}},
        connect_timeout=timedelta(milliseconds=settings.connect_timeout_ms),
    )


def _profile(settings: TemporalSettings, env: Mapping[str, str]) -> ClientConfigProfile:
    source: DataSource | None = None
    if settings.config_file is not None:
        if not settings.config_file.is_file():
            raise ConfigError(f"temporal.config_file: {settings.config_file} is not a readable file")
        source = settings.config_file
    try:
        return ClientConfigProfile.load(profile=settings.profile, config_source=source, override_env_vars=dict(env))
    except (RuntimeError, OSError) as err:  # the SDK's bridge raises its ConfigError, a RuntimeError
        where = f"profile {settings.profile!r}" if settings.profile else "Temporal's client configuration"
        raise ConfigError(f"{where} (TEMPORAL_CONFIG_FILE / TEMPORAL_PROFILE): {err}") from None


def _api_key(settings: TemporalSettings) -> str | None:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value() or None
    if settings.api_key_file is not None:
        key = _read(settings.api_key_file, "temporal.api_key_file").decode().strip()
        if not key:
            raise ConfigError(f"temporal.api_key_file: {settings.api_key_file} is empty")
        return key
    return None


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{setting}: cannot read {path}: {err.strerror}") from None


def _source(source: DataSource | None, what: str) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, Path):
        return _read(source, f"Temporal's client configuration ({what})")
    return source.encode() if isinstance(source, str) else source


def _tls_config(settings: TemporalSettings, base: ClientConfigTLS) -> TLSConfig:
    ca = settings.tls_server_ca_cert_path
    cert, key = settings.tls_client_cert_path, settings.tls_client_key_path
    config = TLSConfig(
        server_root_ca_cert=_read(ca, "temporal.tls_server_ca_cert_path")
        if ca
        else _source(base.server_root_ca_cert, "server CA certificate"),
        domain=settings.tls_server_name or base.server_name,
        client_cert=_read(cert, "temporal.tls_client_cert_path")
        if cert
        else _source(base.client_cert, "client certificate"),
        client_private_key=_read(key, "temporal.tls_client_key_path")
        if key
        else _source(base.client_private_key, "client key"),
    )
    if (config.client_cert is None) != (config.client_private_key is None):
        raise ConfigError("TLS: a client certificate needs its key (TEMPORAL_TLS_CLIENT_CERT_* with …_KEY_*)")
    return config


def data_converter(encryption: EncryptionSettings | None = None) -> DataConverter:
    """How SWOOSH's payloads are written: pydantic models as JSON, AES-256-GCM encrypted when keys are set.

    With encryption, failure messages and stack traces travel encoded (encrypted) too: a rejection's
    reason quotes the caller's input.
    """
    codec = encryption.codec() if encryption is not None else None
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


_runtimes: dict[str, Runtime] = {}


def runtime_with_metrics(bind: str | None) -> Runtime:
    """A Temporal runtime exporting the SDK's metrics (and workflows' own) on a Prometheus endpoint.

    One runtime per address for the life of the process (a runtime owns its endpoint); None or ""
    is the default runtime, without metrics.
    """
    if not bind:
        return Runtime.default()
    if bind not in _runtimes:
        _runtimes[bind] = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=bind)))
    return _runtimes[bind]


async def connect(
    settings: TemporalSettings,
    *,
    encryption: EncryptionSettings | None,
    runtime: Runtime | None = None,
    lazy: bool = False,
    environ: Mapping[str, str] | None = None,
    client_environment: bool = True,
) -> Client:
    """A client for the configured cluster and namespace, with SWOOSH's data converter.

    `encryption` (the process's `[encryption]` settings; required, so that no caller forgets it):
    None or no keys = payloads in plaintext. When `OTEL_TRACES_EXPORTER` turns tracing on, the client
    (and every worker built from it) carries Temporal's OpenTelemetry plugin (see `telemetry.py`).
    Raises ConfigError for unusable settings and TemporalUnreachable (with what to check) when the
    cluster cannot be reached as configured.
    """
    target = resolve(settings, environ, client_environment=client_environment)
    try:
        return await Client.connect(
            target.address,
            namespace=target.namespace,
            api_key=target.api_key,
            tls=target.tls,
            rpc_metadata=dict(target.rpc_metadata),
            connect_timeout=target.connect_timeout,
            data_converter=data_converter(encryption),
            runtime=runtime or Runtime.default(),
            lazy=lazy,
            plugins=telemetry.client_plugins(),
        )
    except RuntimeError as err:
        raise TemporalUnreachable(explain_failure(target, str(err))) from None


_CERT_HINTS = (
    (
        ("unknownissuer", "certificate verify failed", "badsignature"),
        "the server's certificate is not signed by a trusted CA: check temporal.tls_server_ca_cert_path "
        "(TEMPORAL_TLS_SERVER_CA_CERT_PATH)",
    ),
    (
        ("notvalidforname",),
        "the server's certificate does not name this address: set temporal.tls_server_name (TEMPORAL_TLS_SERVER_NAME)",
    ),
    (
        ("invalidcontenttype", "corruptmessage", "wrongversionnumber"),
        "the server does not speak TLS here: set temporal.tls=false (TEMPORAL_TLS=false)",
    ),
    (("connectionrefused",), "nothing listens at this address"),
    (("unauthenticated", "permissiondenied", "apikey"), "the credentials were refused (API key or certificate)"),
)
# The server hung up right after the TLS handshake (or the first request): what it most likely wants.
_DROPPED = (
    "unexpectedeof",
    "close_notify",
    "connectionreset",
    "connectionclosed",
    "brokenpipe",
    "h2protocolerror",
    "certificaterequired",
)
_DROPPED_HINTS = {
    "off": "the connection was dropped: the server may expect TLS (temporal.tls=true)",
    "on": "the server closed the TLS connection: it may require a client certificate (mutual TLS: "
    "temporal.tls_client_cert_path and temporal.tls_client_key_path)",
    "mutual": "the server closed the TLS connection: it may not accept this client certificate "
    "(check that its CA is the one the server trusts for clients)",
}


def explain_failure(target: TemporalTarget, error: str) -> str:
    """The SDK's connection error with where SWOOSH tried to connect and what to check."""
    flat = error.lower().replace(" ", "").replace("_", "")
    hint = next((h for needles, h in _CERT_HINTS if any(n.replace("_", "") in flat for n in needles)), None)
    if hint is None and any(n.replace("_", "") in flat for n in _DROPPED):
        hint = _DROPPED_HINTS[target.tls_mode]
    desc = target.describe()
    where = f"{desc['address']} (namespace {desc['namespace']}, TLS {desc['tls']}, API key {desc['api_key']})"
    text = f"cannot connect to Temporal at {where}: {error.strip()[:600]}"
    return text + (f"; {hint}" if hint else "")
