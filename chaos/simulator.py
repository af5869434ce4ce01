"""The ecosystem simulator (`swoosh sim`): KACHING, the MCP registry, SHHH and BACKBEAT on one loopback server.

It answers exactly what the providers' HTTP modes call, serves a WHOOSH stand-in for migration
rehearsals (`chaos/legacy.py`), and injects faults per endpoint family (`license`, `mcp`, `policy`,
`backbeat`, `legacy`), switchable at run time through `/admin/faults/{family}`:
latency, HTTP 5xx errors, denial, throttling (licence), flapping and clock skew. Tests start it in
process with `running_simulator()`; operators run `swoosh sim`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from swoosh.activities.backbeat import Schedule, frame_payload, published_payload
from swoosh.activities.kaching import Verdict, sign_verdict
from swoosh.chaos.legacy import LegacyState
from swoosh.chaos.legacy import install as install_legacy
from swoosh.chaos.legacy import state_map as legacy_state_map
from swoosh.guards.facts import PolicyRuleSpec
from swoosh.guards.policy import scan
from swoosh.workflows.crypto import private_key_from_text, private_key_to_text, signer_id

FAMILIES = ("license", "mcp", "policy", "backbeat", "legacy")
DEFAULT_PORT = 8090
DEFAULT_TOOLS = {"ucxl.resolve": "1.0.0", "bubble.emit": "1.0.0"}
BeatFormat = Literal["swoosh", "backbeat"]
SIM_CLUSTER_ID = "swoosh-sim"


class Faults(BaseModel):
    """Faults for one endpoint family; applied in this order: latency, flapping, error, throttle, deny."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=120_000)
    error_status: int | None = Field(default=None, ge=500, le=599)  # every request fails with this status
    flap_every: int = Field(default=0, ge=0)  # N > 0: N succeed, the next N fail (error_status or 503), …
    throttle: bool = False  # 429 with Retry-After (the licence endpoint's "throttling")
    deny: bool = False  # licence: signed "denied"; policy: a breach; MCP and BACKBEAT: 403
    skew_ms: int = 0  # the family's clock runs this far ahead (negative: behind)


class SimLicence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    license_id: str
    expires_at_ms: int | None = None


class SimConfig(BaseModel):
    """What the simulated ecosystem serves when no fault is injected."""

    model_config = ConfigDict(extra="forbid")

    tokens: dict[str, SimLicence] = Field(default_factory=lambda: {"sim-token": SimLicence(license_id="sim-license")})
    tools: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TOOLS))
    policy_rules: tuple[PolicyRuleSpec, ...] = (
        PolicyRuleSpec(id="sim-forbidden", pattern=r"(?i)\bforbidden\b", severity="high", description="the word"),
    )
    tempo_bpm: int = 30
    beats_per_bar: int = 4
    shares: tuple[int, int, int, int] = (25, 25, 25, 25)
    pressure: int = Field(default=0, ge=0, le=100)
    # BACKBEAT frames in SWOOSH's own shape, or in BACKBEAT's published BeatFrame (INT-A) shape.
    backbeat_format: BeatFormat = "swoosh"


class ValidateRequest(BaseModel):
    token: str = Field(max_length=4096)
    nonce: str | None = Field(default=None, max_length=256)


class PolicyRequest(BaseModel):
    inputs: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)


class BackbeatRequest(BaseModel):
    pressure: int | None = Field(default=None, ge=0, le=100)
    format: BeatFormat | None = None


class SimState:
    """The simulator's mutable state: served data, faults, request counters."""

    def __init__(self, config: SimConfig, key: Ed25519PrivateKey, clock: Callable[[], int]) -> None:
        self.config = config
        self.key = key
        self.public_key = signer_id(key.public_key())
        self.clock = clock
        self.tools = dict(config.tools)
        self.pressure = config.pressure
        self.beat_format: BeatFormat = config.backbeat_format
        self.schedule = Schedule(config.tempo_bpm, config.beats_per_bar, config.shares)
        self.faults = {f: Faults() for f in FAMILIES}
        self.requests = dict.fromkeys(FAMILIES, 0)
        self.stopping = asyncio.Event()
        self.legacy = LegacyState()

    def now(self, family: str) -> int:
        """The family's clock, skewed as injected."""
        return self.clock() + self.faults[family].skew_ms

    async def gate(self, family: str) -> JSONResponse | None:
        """Count the request and apply the family's faults; a response when the request must fail."""
        n = self.requests[family]
        self.requests[family] = n + 1
        f = self.faults[family]
        if f.latency_ms:
            # Interruptible, so stopping the server does not wait for injected latency.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), f.latency_ms / 1000)
        if f.flap_every:
            if (n // f.flap_every) % 2 == 1:
                return JSONResponse({"error": "flapping"}, status_code=f.error_status or 503)
        elif f.error_status is not None:
            return JSONResponse({"error": "injected"}, status_code=f.error_status)
        if f.throttle:
            return JSONResponse({"error": "throttled"}, status_code=429, headers={"Retry-After": "1"})
        return None


def build_app(state: SimState) -> FastAPI:
    app = FastAPI(title="SWOOSH ecosystem simulator", docs_url=None, redoc_url=None, openapi_url=None)

    @app.post("/v1/license/validate", response_model=None)
    async def validate(body: ValidateRequest) -> JSONResponse | dict[str, Any]:
        if (failed := await state.gate("license")) is not None:
            return failed
        now = state.now("license")
        lic = state.config.tokens.get(body.token)
        if lic is None or state.faults["license"].deny:
            verdict = Verdict(status="denied", issued_at_ms=now, nonce=body.nonce)
        else:
            expired = lic.expires_at_ms is not None and lic.expires_at_ms <= now
            verdict = Verdict(
                status="expired" if expired else "valid",
                license_id=lic.license_id,
                expires_at_ms=lic.expires_at_ms,
                issued_at_ms=now,
                nonce=body.nonce,
            )
        return sign_verdict(state.key, verdict).model_dump()

    @app.get("/v1/mcp/tools", response_model=None)
    async def tools(name: list[str] = Query(default=[])) -> JSONResponse | dict[str, Any]:  # noqa: B008
        if (failed := await state.gate("mcp")) is not None:
            return failed
        if state.faults["mcp"].deny:
            return JSONResponse({"error": "denied"}, status_code=403)
        served = {n: v for n, v in state.tools.items() if not name or n in name}
        listing = [{"name": n, "version": v} for n, v in sorted(served.items())]
        return {"kind": "mcp.registry.v1", "generated_at_ms": state.now("mcp"), "tools": listing}

    @app.post("/v1/policy/check", response_model=None)
    async def check(body: PolicyRequest) -> JSONResponse | dict[str, Any]:
        if (failed := await state.gate("policy")) is not None:
            return failed
        if state.faults["policy"].deny:
            return {"breaches": ["denied by the policy service"], "checked_at_ms": state.now("policy")}
        breaches = scan(state.config.policy_rules, body.inputs, body.evidence)
        return {"breaches": breaches, "checked_at_ms": state.now("policy")}

    @app.get("/v1/backbeat/frame", response_model=None)
    async def frame() -> JSONResponse | dict[str, Any]:
        if (failed := await state.gate("backbeat")) is not None:
            return failed
        if state.faults["backbeat"].deny:
            return JSONResponse({"error": "denied"}, status_code=403)
        now = state.now("backbeat")
        if state.beat_format == "backbeat":
            return published_payload(state.schedule, now, SIM_CLUSTER_ID)
        return frame_payload(state.schedule.frame(now, state.pressure), sent_at_ms=now)

    install_legacy(app, state.legacy, state.gate)

    @app.get("/admin/faults")
    async def get_faults() -> dict[str, Faults]:
        return state.faults

    @app.put("/admin/faults/{family}")
    async def put_faults(family: str, faults: Faults) -> Faults:
        if family not in FAMILIES:
            raise HTTPException(404, f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
        state.faults[family] = faults
        return faults

    @app.delete("/admin/faults")
    async def clear_faults() -> dict[str, Faults]:
        state.faults = {f: Faults() for f in FAMILIES}
        return state.faults

    @app.get("/admin/stats")
    async def stats() -> dict[str, Any]:
        return {"requests": state.requests}

    @app.put("/admin/tools")
    async def put_tools(tools: dict[str, str]) -> dict[str, str]:
        state.tools = dict(tools)
        return state.tools

    @app.put("/admin/backbeat")
    async def put_backbeat(body: BackbeatRequest) -> dict[str, Any]:
        if body.pressure is not None:
            state.pressure = body.pressure
        if body.format is not None:
            state.beat_format = body.format
        return {"pressure": state.pressure, "format": state.beat_format}

    @app.get("/admin/license-key")
    async def license_key() -> dict[str, str]:
        return {"public_key": state.public_key}

    return app


@dataclass
class SimHandle:
    """A running simulator: its base URL, its state (read directly) and admin calls over HTTP."""

    base_url: str
    state: SimState
    admin: httpx.AsyncClient

    @property
    def public_key(self) -> str:
        return self.state.public_key

    def requests(self, family: str) -> int:
        return self.state.requests[family]

    async def set_faults(self, family: str, **faults: Any) -> Faults:
        """Replace one family's faults through the admin endpoint (unnamed faults are cleared)."""
        response = await self.admin.put(f"/admin/faults/{family}", json=faults)
        response.raise_for_status()
        return Faults.model_validate(response.json())

    async def clear_faults(self) -> None:
        (await self.admin.delete("/admin/faults")).raise_for_status()

    async def stats(self) -> dict[str, int]:
        response = await self.admin.get("/admin/stats")
        response.raise_for_status()
        return dict(response.json()["requests"])

    async def set_tools(self, tools: dict[str, str]) -> None:
        (await self.admin.put("/admin/tools", json=tools)).raise_for_status()

    async def set_pressure(self, pressure: int) -> None:
        (await self.admin.put("/admin/backbeat", json={"pressure": pressure})).raise_for_status()

    async def set_disagree(
        self, reject_every: int = 0, state_every: int = 0, transitions: list[str] | None = None
    ) -> None:
        """The legacy stand-in's disagree switch (0 = agree)."""
        body = {"reject_every": reject_every, "state_every": state_every, "transitions": transitions or []}
        (await self.admin.put("/admin/legacy/disagree", json=body)).raise_for_status()

    async def legacy_log(self, which: str) -> list[dict[str, Any]]:
        """The stand-in's `injections` or `applied` log."""
        response = await self.admin.get(f"/admin/legacy/{which}")
        response.raise_for_status()
        return list(response.json())

    async def set_beat_format(self, beat_format: BeatFormat) -> None:
        """Serve BACKBEAT frames in SWOOSH's own shape or in BACKBEAT's published one."""
        (await self.admin.put("/admin/backbeat", json={"format": beat_format})).raise_for_status()


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimConfig | None = None,
    *,
    key: Ed25519PrivateKey | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], int] = _wall_ms,
) -> AsyncIterator[SimHandle]:
    """Serve the simulator in this event loop (port 0 = ephemeral); stop it on exit."""
    state = SimState(config or SimConfig(), key or Ed25519PrivateKey.generate(), clock)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=2,
        )
    )
    # startup/main_loop/shutdown rather than serve(): serve() would take over the process's signal handlers.
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    await server.startup(sockets=[sock])
    loop_task = asyncio.create_task(server.main_loop())
    bound_port = sock.getsockname()[1]
    base_url = f"http://{host}:{bound_port}"
    admin = httpx.AsyncClient(base_url=base_url, timeout=5.0, trust_env=False)
    try:
        yield SimHandle(base_url, state, admin)
    finally:
        await admin.aclose()
        state.stopping.set()
        server.should_exit = True
        await loop_task
        await server.shutdown(sockets=[sock])


# ---------------------------------------------------------------------- `swoosh sim`
def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The simulator is a tool beside SWOOSH, not one of its processes: its own variables, read here.
    env = os.environ
    parser.add_argument(
        "--host", default=env.get("SWOOSH_SIM_HOST", "127.0.0.1"), help="bind address ($SWOOSH_SIM_HOST, loopback)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=env.get("SWOOSH_SIM_PORT", str(DEFAULT_PORT)),  # argparse applies type=int
        help=f"port (default $SWOOSH_SIM_PORT, {DEFAULT_PORT}; 0 = any)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(env.get("SWOOSH_DATA_DIR", ".swoosh")),
        help="where the sim keeps its key and token (default $SWOOSH_DATA_DIR, .swoosh)",
    )
    parser.add_argument("--tools", default=None, help="MCP tools served, name=version[,name=version…]")
    parser.add_argument("--tempo-bpm", type=int, default=30, help="BACKBEAT tempo")
    parser.add_argument("--beats-per-bar", type=int, default=4, help="BACKBEAT beats per bar")
    parser.add_argument(
        "--backbeat-format",
        choices=["swoosh", "backbeat"],
        default="swoosh",
        help="beat frames in SWOOSH's own shape or BACKBEAT's published BeatFrame (plan|execute|review)",
    )


def _secret_file(path: Path, make: Callable[[], str]) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def _sim_config(args: argparse.Namespace, token: str) -> SimConfig:
    tools = dict(DEFAULT_TOOLS)
    if args.tools:
        tools = {}
        for item in args.tools.split(","):
            name, sep, version = item.partition("=")
            if not sep or not name.strip() or not version.strip():
                raise ValueError(f"--tools: expected name=version, got {item!r}")
            tools[name.strip()] = version.strip()
    return SimConfig(
        tokens={token: SimLicence(license_id="sim-license")},
        tools=tools,
        tempo_bpm=args.tempo_bpm,
        beats_per_bar=args.beats_per_bar,
        backbeat_format=args.backbeat_format,
    )


def main(args: argparse.Namespace) -> int:
    """Run the simulator until SIGINT/SIGTERM; print the SWOOSH_* settings that point SWOOSH at it."""
    key_file, token_file = args.data_dir / "sim-license-key", args.data_dir / "sim-token"
    key = private_key_from_text(_secret_file(key_file, lambda: private_key_to_text(Ed25519PrivateKey.generate())))
    token = _secret_file(token_file, lambda: "sim-" + secrets.token_urlsafe(24))
    try:
        config = _sim_config(args, token)
    except ValueError as err:
        print(f"swoosh sim: {err}", file=sys.stderr)
        return 2
    asyncio.run(_serve(config, key, args.host, args.port, token_file))
    return 0


async def _serve(config: SimConfig, key: Ed25519PrivateKey, host: str, port: int, token_file: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_simulator(config, key=key, host=host, port=port) as sim:
        print(f"swoosh sim: serving on {sim.base_url} (admin: {sim.base_url}/admin/faults)", flush=True)
        print("# point SWOOSH's providers at the simulator:")
        for provider in ("KACHING", "MCP", "SHHH", "BACKBEAT"):
            print(f"export SWOOSH_{provider}_MODE=http SWOOSH_{provider}_BASE_URL={sim.base_url}")
        print(f"export SWOOSH_KACHING_PUBLIC_KEY={sim.public_key} SWOOSH_KACHING_TOKEN_FILE={token_file}")
        print("# migration rehearsal: the WHOOSH stand-in on the same port (docs/migration.md)")
        print(f"export SWOOSH_MIGRATION_LEGACY_URL={sim.base_url}")
        print(
            f"export SWOOSH_MIGRATION_STATE_MAP='{json.dumps(legacy_state_map(), separators=(',', ':'))}'", flush=True
        )
        await stop.wait()


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="swoosh sim", description="SWOOSH ecosystem simulator")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
