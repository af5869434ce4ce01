"""SWOOSH's one typed settings object: defaults, then an optional TOML file, then `SWOOSH_*` variables.

`Settings.load()` reads the TOML file named by `SWOOSH_CONFIG` (if set; it may be age-encrypted, see
`config_files.py`), overlays every `SWOOSH_*` variable listed by `env_variables()`, validates the
result and raises `ConfigError` naming the offending variable or key. Every secret setting also has a
`_FILE` form (`SWOOSH_API_TOKENS_FILE`, TOML `tokens_file`) naming a file that holds its value.
Every duration is an integer number of milliseconds (no floats reach the guards). `docs/providers.md`
documents every variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from swoosh.activities.config import BackbeatSettings, KachingSettings, McpSettings, ShhhSettings
from swoosh.activities.decisions import RecordsSettings
from swoosh.activities.receipts import ReceiptSettings
from swoosh.api.server.migration import MigrationSettings
from swoosh.api.server.signing import GatewayKeyError, GatewayKeys
from swoosh.api.server.tokens import ApiToken, tokens_field
from swoosh.worker.config_files import read_config, read_secret_file
from swoosh.workflows.engine import EngineConfig, new_engine_config
from swoosh.workflows.errors import ConfigError
from swoosh.workflows.ids import PROJECT_ID_PATTERN
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.lifecycle.connection import TemporalSettings
from swoosh.workflows.messages import LifecycleSettings

ENV_PREFIX = "SWOOSH_"
CONFIG_ENV = "SWOOSH_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiSettings(_Section):
    """The HTTP API: bind address, scoped bearer tokens (none = no auth) and the legacy default project."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    tokens: tuple[ApiToken, ...] = ()
    # pydantic's (Rust) regex: $ is the end of the text
    default_project: str = Field(default="default", pattern=f"^{PROJECT_ID_PATTERN}$")
    # Where callers and the Temporal UI reach this API (behind a proxy, say); default http://host:port.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")

    def url(self) -> str:
        """The API's public URL: `public_url`, else http://host:port (loopback for a wildcard host)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    # Private keys (base64url Ed25519 seeds) of the gateway identities tokens may sign legacy bodies as.
    gateway_keys: tuple[SecretStr, ...] = ()
    gateway_keys_file: Path | None = None  # one seed per line ('#' comments)

    def gateway_key_set(self) -> GatewayKeys:
        """The gateway keys, read now; GatewayKeyError names the entry, never the key."""
        return GatewayKeys.load(self.gateway_keys, self.gateway_keys_file)

    @model_validator(mode="after")
    def _gateways_held(self) -> Self:
        bound = {t.gateway for t in self.tokens if t.gateway is not None}
        if not bound:
            return self
        try:
            held = set(self.gateway_key_set().signers)
        except GatewayKeyError as err:
            raise ValueError(str(err)) from None
        missing = sorted(bound - held)
        if missing:
            labels = ", ".join(t.label for t in self.tokens if t.gateway in missing)
            raise ValueError(f"token(s) {labels} are bound to gateway identities whose keys are not in gateway_keys")
        return self

    # Per project, per API replica: transitions in flight towards Temporal (which allows 10 Updates in
    # flight per workflow, whatever the number of replicas): keep replicas x max_in_flight <= 10.
    max_in_flight: int = Field(default=8, ge=1, le=10)
    max_waiting: int = Field(default=64, ge=0, le=10_000)
    max_wait_ms: int = Field(default=10_000, ge=0, le=600_000)
    # Prometheus endpoint for the Temporal SDK's metrics of the API's client; empty = none (the API's
    # own metrics are on its /metrics either way).
    sdk_metrics_bind: str = Field(default="", pattern=r"^(\S+:\d{1,5})?$")
    # uvicorn answers 503 once this many connections (or requests in progress) are open: a flood of
    # connections costs the API process memory and file descriptors, never more.
    limit_concurrency: int = Field(default=1024, ge=2, le=100_000)
    # Running projects at most (PUT of a new one beyond: 409 project_quota); counted with Temporal's
    # visibility, exact within one API replica (api/server/quota.py says what several replicas mean).
    max_projects: int = Field(default=10_000, ge=1)

    @field_validator("tokens", mode="before")
    @classmethod
    def _legacy_tokens(cls, value: Any) -> Any:
        return tokens_field(value)

    @field_validator("tokens")
    @classmethod
    def _unique_labels(cls, value: tuple[ApiToken, ...]) -> tuple[ApiToken, ...]:
        labels = [t.label for t in value]
        if len(labels) != len(set(labels)):
            raise ValueError("token labels must be unique")
        return value


class WorkerSettings(_Section):
    """A `swoosh worker` process (and the one `swoosh dev` runs): metrics, capacity, shutdown, health port."""

    # Prometheus endpoint for the SDK's and the workflow's swoosh_* metrics; empty = no endpoint.
    metrics_bind: str = "127.0.0.1:9464"
    # Workflow runs kept in memory between tasks (0 = none: every task replays the whole history).
    max_cached_workflows: int = Field(default=1000, ge=0, le=1_000_000)
    max_concurrent_workflow_tasks: int = Field(default=100, ge=2, le=10_000)
    max_concurrent_activities: int = Field(default=100, ge=1, le=10_000)
    max_concurrent_local_activities: int = Field(default=100, ge=1, le=10_000)
    graceful_shutdown_ms: int = Field(default=10_000, ge=0, le=3_600_000)
    # host:port of GET /livez and /readyz; empty = not served.
    health_bind: str = Field(default="", pattern=r"^(\S+:\d{1,5})?$")


class DevSettings(_Section):
    """`swoosh dev` (`make run`) only: the dev server listens on `temporal.address`, its UI here."""

    ui_port: int = Field(default=8233, ge=1, le=65535)


class EngineSettings(_Section):
    """Knobs that change decisions (carried into every snapshot) and the snapshot cadence."""

    max_offset_ms: int = Field(default=60_000, ge=0)
    # At most 1024: an entry is up to ~0.9 KB and the window rides in every snapshot, which must stay
    # under Temporal's 2 MB payload limit together with the decision records waiting for the sink.
    idem_window: int = Field(default=1024, ge=16, le=1024)
    grace_ms: int = Field(default=900_000, ge=0)
    snapshot_every: int = Field(default=500, ge=1, le=1800)
    reverb_snapshot_min: int = Field(default=100, ge=1, le=1800)
    # Newest decision records a project's workflow keeps for the decisions query (older pages come
    # from the decision-record store); they ride in every snapshot.
    dr_retain: int = Field(default=128, ge=0, le=1024)
    # Each attempt of the guard activity (three in all); a proposal whose guards cannot be evaluated in
    # them is left undecided (503 + Retry-After, or a rejection-log entry for a Signal).
    guard_timeout_ms: int = Field(default=10_000, ge=100, le=60_000)

    def config(self) -> EngineConfig:
        """The engine's own config model."""
        return new_engine_config(max_offset_ms=self.max_offset_ms, idem_window=self.idem_window, grace_ms=self.grace_ms)

    def lifecycle(self) -> LifecycleSettings:
        """The snapshot cadence new projects start with."""
        return LifecycleSettings(
            snapshot_every=self.snapshot_every,
            reverb_snapshot_min=self.reverb_snapshot_min,
            dr_retain=self.dr_retain,
            guard_timeout_ms=self.guard_timeout_ms,
        )


class CodecServerSettings(_Section):
    """`swoosh codec-server` (and the one `swoosh dev` runs): where it listens, which UI origins may call it."""

    host: str = "127.0.0.1"
    port: int = Field(default=8234, ge=0, le=65535)
    # Browser origins of the Temporal UI allowed to call it (CORS); `swoosh dev` adds its own UI's.
    origins: tuple[str, ...] = ("http://127.0.0.1:8233", "http://localhost:8233")


class Settings(_Section):
    """Everything a SWOOSH process is configured with."""

    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    dev: DevSettings = Field(default_factory=DevSettings)
    # Relative paths are made absolute against the working directory when the settings are loaded,
    # so every process and every message names the same folder whatever it later changes to.
    data_dir: Path = Path(".swoosh")
    keyring: Path | None = None
    # This process's name in metrics (the `swoosh_instance` tag); empty = the host name.
    instance: str | None = Field(default=None, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    kaching: KachingSettings = Field(default_factory=KachingSettings)
    backbeat: BackbeatSettings = Field(default_factory=BackbeatSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    shhh: ShhhSettings = Field(default_factory=ShhhSettings)
    records: RecordsSettings = Field(default_factory=RecordsSettings)
    receipts: ReceiptSettings = Field(default_factory=ReceiptSettings)
    migration: MigrationSettings = Field(default_factory=MigrationSettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    codec_server: CodecServerSettings = Field(default_factory=CodecServerSettings)

    def lifecycle(self) -> LifecycleSettings:
        """What new projects start with: the engine's snapshot cadence and the API's public URL (UI links)."""
        return self.engine.lifecycle().model_copy(update={"api_url": self.api.url()})

    @model_validator(mode="before")
    @classmethod
    def _licence_paths(cls, data: Any) -> Any:
        # The embedded licence lives in the data directory unless configured elsewhere.
        if not isinstance(data, dict) or not isinstance(data.get("kaching", {}), dict):
            return data
        data_dir = absolute(Path(str(data.get("data_dir") or ".swoosh")))
        kaching = {"license_file": data_dir / "license.json", "public_key_file": data_dir / "license.pub"}
        kaching.update({k: v for k, v in data.get("kaching", {}).items() if v is not None})
        return {**data, "data_dir": data_dir, "kaching": kaching}

    @field_validator("data_dir", "keyring")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else absolute(value)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Settings:
        """Defaults ← TOML file (`config_file`, else $SWOOSH_CONFIG) ← `SWOOSH_*` variables; ConfigError if invalid."""
        return load_settings(environ, config_file).settings


@dataclass(frozen=True)
class Loaded:
    """Settings and every file they were read from (what a reload watches)."""

    settings: Settings
    files: tuple[Path, ...]
    config_file: str | Path | None = None  # as given to `load_settings` (None: $SWOOSH_CONFIG at each load)

    def again(self) -> Loaded:
        """Load the settings the same way once more (files re-read; the environment as it is now)."""
        return load_settings(config_file=self.config_file)


def load_settings(environ: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> Loaded:
    """`Settings.load`, also naming the files read: the config file, `_FILE` secrets, token secret files."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    files: list[Path] = []
    source = config_file if config_file is not None else env.get(CONFIG_ENV) or None
    variables = env_variables()
    if source is not None:
        data = read_config(Path(source), env)
        files.append(Path(source))
        _note_sources(data, (), f"{source}: ", sources)
        _read_toml_secret_files(data, variables, str(source), sources, files)
    for var in variables:
        if var.name not in env:
            continue
        if var.file:
            if var.name.removesuffix(FILE_SUFFIX) in env:
                raise ConfigError(f"{var.name}: give one of {var.name.removesuffix(FILE_SUFFIX)} and {var.name}")
            path = Path(env[var.name])
            value = _parse_env(var, read_secret_file(path, var.name))
            files.append(path)
        else:
            value = _parse_env(var, env[var.name])
        target = data
        for part in var.path[:-1]:
            node = target.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{var.name}: [{part}] in the config file is not a table")
            target = node
        target[var.path[-1]] = value
        sources[var.path] = var.name
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_explain(err, sources)) from None
    files += [t.secret_file for t in settings.api.tokens if t.secret_file is not None]
    return Loaded(settings, tuple(dict.fromkeys(files)), config_file)


def _read_toml_secret_files(
    data: dict[str, Any], variables: list[EnvVar], source: str, sources: dict[tuple[str, ...], str], files: list[Path]
) -> None:
    """`[section] <secret>_file = "path"`: the file's content is the secret's value, parsed like its variable."""
    for var in variables:
        if not var.file:
            continue
        section_name, key = var.path
        section = data.get(section_name)
        if not isinstance(section, dict) or f"{key}_file" not in section:
            continue
        if key in section:
            raise ConfigError(f"{source}: give one of {key} and {key}_file in [{section_name}]")
        path = Path(str(section.pop(f"{key}_file")))
        section[key] = _parse_env(var, read_secret_file(path, f"{source}: {section_name}.{key}_file"))
        files.append(path)
        sources[var.path] = f"{source}: {section_name}.{key}_file"


def absolute(path: Path) -> Path:
    """`path` made absolute against the working directory, `~` expanded, `..` folded (symlinks kept)."""
    return Path(os.path.abspath(path.expanduser()))


class EnvVar(BaseModel):
    """One environment variable: its name, the settings path it sets, how it is parsed, its default."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: tuple[str, ...]
    kind: Literal["scalar", "csv", "pairs", "json"]
    default: str
    file: bool = False  # the `_FILE` form of a secret: the variable names a file holding the value


_ALIASES = {("api", "default_project"): "SWOOSH_DEFAULT_PROJECT"}
_KINDS: dict[tuple[str, ...], Literal["csv", "pairs", "json"]] = {
    ("temporal", "grpc_meta"): "pairs",
    ("api", "tokens"): "csv",
    ("api", "gateway_keys"): "csv",
    ("mcp", "probe"): "csv",
    ("mcp", "tools"): "pairs",
    ("shhh", "rules"): "json",
    ("migration", "routed"): "csv",
    ("migration", "state_map"): "json",
    ("encryption", "keys"): "csv",
    ("codec_server", "origins"): "csv",
}
# Secret settings: SecretStr, never echoed in errors, and each also settable from a file: the variable
# `<VAR>_FILE` (or the TOML key `<key>_file`) names a file whose content is the value (sections that
# declare their own `<key>_file` field, read at use, keep it).
_SECRET = {
    ("api", "tokens"),
    ("api", "gateway_keys"),
    ("kaching", "token"),
    ("records", "postgres_dsn"),
    ("records", "bubble_token"),
    ("temporal", "api_key"),
    ("temporal", "grpc_meta"),
    ("receipts", "key"),
    ("migration", "legacy_token"),
    ("encryption", "keys"),
}
FILE_SUFFIX = "_FILE"


def env_variables() -> list[EnvVar]:
    """Every `SWOOSH_*` variable `Settings.load` reads, in declaration order (docs are checked against it)."""
    out: list[EnvVar] = []
    defaults = Settings()
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = getattr(defaults, name)
            for sub in annotation.model_fields:
                path = (name, sub)
                env = _ALIASES.get(path, f"{ENV_PREFIX}{name.upper()}_{sub.upper()}")
                kind = _KINDS.get(path, "scalar")
                out.append(EnvVar(name=env, path=path, kind=kind, default=_show(section, sub)))
                if path in _SECRET and f"{sub}_file" not in annotation.model_fields:
                    out.append(EnvVar(name=env + FILE_SUFFIX, path=path, kind=kind, default="", file=True))
        else:
            out.append(
                EnvVar(name=f"{ENV_PREFIX}{name.upper()}", path=(name,), kind="scalar", default=_show(defaults, name))
            )
    return out


def _show(model: BaseModel, name: str) -> str:
    if isinstance(model, Settings) and name == "data_dir":
        return ".swoosh"  # the default as written; loading makes it absolute
    value = getattr(model, name)
    if value is None or value == () or value == {}:
        return ""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_env(var: EnvVar, raw: str) -> Any:
    text = raw.strip()
    if var.kind == "scalar":
        return text
    if var.kind == "json" or (text[:1] in "[{" and text):
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{var.name}: not valid JSON ({err.msg} at position {err.pos})") from None
    items = [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]
    if var.kind == "csv":
        return items
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            shown = "an entry without '='" if var.path in _SECRET else repr(item)
            raise ConfigError(f"{var.name}: expected name=value pairs separated by commas, got {shown}")
        pairs[key.strip()] = value.strip()
    return pairs


def _note_sources(data: dict[str, Any], prefix: tuple[str, ...], label: str, out: dict[tuple[str, ...], str]) -> None:
    for key, value in data.items():
        path = (*prefix, key)
        out[path] = label + ".".join(path)
        if isinstance(value, dict) and len(path) == 1:
            _note_sources(value, path, label, out)


def _explain(err: ValidationError, sources: dict[tuple[str, ...], str]) -> str:
    lines = []
    for e in err.errors():
        loc = tuple(str(p) for p in e["loc"])
        where = ".".join(loc) or "settings"
        origin = next((sources[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in sources), None)
        if origin is None:  # a whole-section check: name every source that fed the section
            origin = ", ".join(sorted(v for k, v in sources.items() if k[: len(loc)] == loc)) or "defaults"
        msg = str(e["msg"]).removeprefix("Value error, ")
        shown = ""
        if (
            loc[:2] not in _SECRET
            and e["type"] not in ("missing", "extra_forbidden")
            and isinstance(e.get("input"), str)
        ):
            shown = f" (got {e['input']!r})"
        if e["type"] == "extra_forbidden":
            msg = "unknown setting"
        lines.append(f"{where} from {origin}: {msg}{shown}")
    return "invalid settings: " + "; ".join(lines)
