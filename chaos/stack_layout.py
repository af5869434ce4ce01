"""Where each process of a chaos stack runs and how it is configured: hosts, ports, files, environment, commands.

`StackLayout` starts nothing: it takes the free ports, knows every address and file of a stack, the
`SWOOSH_*` environment of each child and the command line of each process, and gives each host's
folder its own copy of what its process reads. `Stack` (`chaos/stack.py`) runs what it describes.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from swoosh.chaos.process import HOST, REPO_ROOT, Proc, free_port
from swoosh.workflows.lifecycle.codec import EncryptionSettings
from swoosh.workflows.testing.environment import binary, search_attribute_flags


@dataclass(frozen=True)
class Host:
    """Where a process runs: a command prefix, the address it binds and its own data folder.

    The default is this machine's loopback with the stack's root as the folder.
    """

    name: str = "local"
    address: str = HOST
    launcher: tuple[str, ...] = ()
    folder: Path | None = None
    bind: str | None = None  # what a server binds, when not `address` (e.g. 0.0.0.0 on a host of its own)


LOCAL = Host()


class StackLayout:
    """The processes of a stack as configuration: hosts, ports, folders, environment and command lines."""

    def __init__(
        self,
        root: Path,
        *,
        workers: int,
        no_sticky: bool,
        simulator: bool,
        extra_env: dict[str, str] | None,
        sim_tempo_bpm: int,
        sim_beats_per_bar: int,
        temporal_args: list[str] | None,
        apis: int,
        hosts: Mapping[str, Host] | None,
        records: Literal["jsonl", "postgres"],
        encryption: EncryptionSettings | None,
    ) -> None:
        if workers < 0 or apis < 0:
            raise ValueError("workers and apis must be >= 0")
        self.root = Path(root).resolve()
        self.hosts = dict(hosts or {})
        self.records = records
        self.n_apis = apis
        self.n_workers = workers
        self.no_sticky = no_sticky
        self.simulator = simulator
        self.extra_env = dict(extra_env or {})
        # Payload encryption for every process of the stack and the harness's own client (None = plaintext).
        self.encryption = encryption if encryption is not None and encryption.enabled else None
        self.sim_tempo_bpm = sim_tempo_bpm
        self.sim_beats_per_bar = sim_beats_per_bar
        self.temporal_args = list(temporal_args or [])
        self.logs_dir = self.root / "logs"
        self.temporal_port = free_port()
        self.api_ports = [free_port() for _ in range(apis)]
        self.api_port = self.api_ports[0] if apis else free_port()
        self.sim_port = free_port()
        self.worker_metrics_ports = [free_port() for _ in range(workers)]
        self.sim_public_key: str | None = None  # the simulator's licence key, once it serves

    # ------------------------------------------------------------------ addresses and files
    def host(self, role: str) -> Host:
        return self.hosts.get(role, LOCAL)

    def folder(self, role: str) -> Path:
        """The data folder of the process `role` (its host's own folder, else the stack's root)."""
        folder = self.host(role).folder
        return Path(folder).resolve() if folder is not None else self.root

    @property
    def temporal_address(self) -> str:
        return f"{self.host('temporal').address}:{self.temporal_port}"

    @property
    def api_url(self) -> str:
        return self.api_urls[0] if self.api_urls else f"http://{HOST}:{self.api_port}"

    @property
    def api_urls(self) -> list[str]:
        return [f"http://{self.host(f'api-{i}').address}:{port}" for i, port in enumerate(self.api_ports)]

    @property
    def sim_url(self) -> str | None:
        return f"http://{self.host('sim').address}:{self.sim_port}" if self.simulator else None

    @property
    def data_dir(self) -> Path:
        return self.root

    @property
    def keyring_path(self) -> Path:
        return self.root / "dev" / "keyring.json"

    @property
    def keys_dir(self) -> Path:
        return self.root / "dev" / "keys"

    @property
    def signers_path(self) -> Path:
        return self.root / "dev" / "signers.json"

    @property
    def db_path(self) -> Path:
        return self.root / "temporal.db"

    @property
    def decisions_dir(self) -> Path:
        return self.root / "decisions"

    def worker_metrics_url(self, i: int) -> str:
        return f"http://{self.host(f'worker-{i}').address}:{self.worker_metrics_ports[i]}/metrics"

    # ------------------------------------------------------------------ environment
    def child_env(self, role: str = "api-0") -> dict[str, str]:
        """The environment of a SWOOSH child: the parent's, minus stray SWOOSH_*, plus the stack's for `role`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWOOSH_")}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        env["PYTHONUNBUFFERED"] = "1"
        folder = self.folder(role)
        api = int(role.split("-")[1]) if role.startswith("api-") and self.api_ports else 0
        env.update(
            {
                "SWOOSH_TEMPORAL_ADDRESS": self.temporal_address,
                "SWOOSH_DATA_DIR": str(folder),
                "SWOOSH_KEYRING": str(folder / "dev" / "keyring.json"),
                "SWOOSH_API_HOST": self.host(role).address if role.startswith("api-") else HOST,
                "SWOOSH_API_PORT": str(self.api_ports[api] if self.api_ports else self.api_port),
            }
        )
        if self.records == "postgres":
            env["SWOOSH_RECORDS_STORE"] = "postgres"
            env["SWOOSH_RECORDS_POSTGRES_DSN_FILE"] = str(folder / "secrets" / "records-dsn")
        if self.simulator:
            url = str(self.sim_url)
            for provider in ("KACHING", "MCP", "SHHH", "BACKBEAT"):
                env[f"SWOOSH_{provider}_MODE"] = "http"
                env[f"SWOOSH_{provider}_BASE_URL"] = url
            env["SWOOSH_KACHING_TOKEN_FILE"] = str(self.root / "sim" / "sim-token")
            if self.sim_public_key:
                env["SWOOSH_KACHING_PUBLIC_KEY"] = self.sim_public_key
            env["SWOOSH_BACKBEAT_TEMPO_BPM"] = str(self.sim_tempo_bpm)
            env["SWOOSH_BACKBEAT_BEATS_PER_BAR"] = str(self.sim_beats_per_bar)
        if self.encryption is not None:
            env["SWOOSH_ENCRYPTION_KEYS_FILE"] = str(self._key_file())
        env.update(self.extra_env)
        return env

    def _key_file(self) -> Path:
        """The stack's encryption keys for its children, in a file only this user reads (not in the environment)."""
        assert self.encryption is not None
        path = self.root / "secrets" / "encryption.keys"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # The first key listed is the active one unless active_key says otherwise: write that one first.
                active = self.encryption.active_key
                keys = sorted(self.encryption.keys, key=lambda k: not k.get_secret_value().startswith(f"{active}="))
                fh.write("".join(k.get_secret_value() + "\n" for k in keys))
        return path

    # ------------------------------------------------------------------ process definitions
    def temporal_proc(self) -> Proc:
        cmd = [
            binary("temporal"), "server", "start-dev",
            "--ip", self.host("temporal").bind or self.host("temporal").address, "--port", str(self.temporal_port),
            "--headless", "--http-port", str(free_port()), "--metrics-port", str(free_port()),
            "--db-filename", str(self.db_path),
            "--log-level", "warn",
            *search_attribute_flags(),
            *self.temporal_args,
        ]  # fmt: skip
        # OTEL_* are for SWOOSH's processes; the dev server would refuse exporters it lacks (`console`).
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        return self._on("temporal", Proc("temporal", cmd, env, self.logs_dir / "temporal.log"))

    def _on(self, role: str, proc: Proc) -> Proc:
        """The process, launched on its host."""
        proc.cmd = [*self.host(role).launcher, *proc.cmd]
        return proc

    def worker_proc(self, i: int) -> Proc:
        role = f"worker-{i}"
        cmd = [
            sys.executable,
            "-m",
            "swoosh.worker.cli",
            "worker",
            "--metrics-bind",
            f"{self.host(role).address}:{self.worker_metrics_ports[i]}",
        ]
        if self.no_sticky:
            cmd.append("--no-sticky")
        return self._on(role, Proc(role, cmd, self.child_env(role), self.logs_dir / f"{role}.log"))

    def api_proc(self, i: int = 0) -> Proc:
        role = f"api-{i}"
        name = "api" if self.n_apis == 1 else role
        # On a host of its own (`make cluster`: a private network namespace the harness made) the API
        # binds that host's address; the harness's callers send no token, so say so explicitly.
        cmd = [sys.executable, "-m", "swoosh.worker.cli", "api", "--log-level", "warning", "--insecure"]
        return self._on(role, Proc(name, cmd, self.child_env(role), self.logs_dir / f"{name}.log"))

    def sim_proc(self) -> Proc:
        cmd = [
            *self.host("sim").launcher, sys.executable, "-m", "swoosh.worker.cli", "sim",
            "--host", self.host("sim").address, "--port", str(self.sim_port),
            "--data-dir", str(self.root / "sim"),
            "--tempo-bpm", str(self.sim_tempo_bpm), "--beats-per-bar", str(self.sim_beats_per_bar),
        ]  # fmt: skip
        return Proc("sim", cmd, self.child_env("sim"), self.logs_dir / "sim.log")

    def provision_folders(self, records_dsn: str | None) -> None:
        """Each host's folder gets its own copy of what its process reads: keyring, licence, DSN file."""
        roles = [f"worker-{i}" for i in range(self.n_workers)] + [f"api-{i}" for i in range(self.n_apis)] + ["sim"]
        for role in roles:
            folder = self.folder(role)
            if folder != self.root:
                (folder / "dev").mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.keyring_path, folder / "dev" / "keyring.json")
                for name in ("license.json", "license.pub"):
                    if (self.root / name).exists():
                        shutil.copy2(self.root / name, folder / name)
            if records_dsn is not None:
                secrets_dir = folder / "secrets"
                secrets_dir.mkdir(parents=True, exist_ok=True)
                dsn_file = secrets_dir / "records-dsn"
                dsn_file.write_text(records_dsn + "\n", encoding="utf-8")
                dsn_file.chmod(0o600)
