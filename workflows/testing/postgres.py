"""A real PostgreSQL server for tests and multi-host runs: initdb in a folder, start, stop by its own pid.

Debian's PostgreSQL binaries (`/usr/lib/postgresql/<v>/bin`) are used; where none are installed and
we are root, `ensure_binaries()` installs Debian's `postgresql` package. PostgreSQL refuses to run as
root, so as root the server runs as the `postgres` OS user (`setpriv`, which execs: the pid we hold
is the postmaster's own). `launcher` puts a prefix before every command, e.g.
`["ip", "netns", "exec", "db"]` to start the server inside a network namespace.

    server = PostgresServer(tmp_dir)
    server.start()                 # initdb on first start, then postgres on a free port
    dsn = server.dsn               # postgresql://swoosh:<password>@127.0.0.1:<port>/swoosh
    server.stop()
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

PG_ROOTS = (Path("/usr/lib/postgresql"),)
OS_USER = "postgres"
DB_USER = "swoosh"
DB_NAME = "swoosh"


class PostgresError(RuntimeError):
    """The test server could not be set up or started (the message says why and where its log is)."""


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server bin directory (holding initdb and postgres), or None."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).parent
    found = []
    for root in PG_ROOTS:
        if root.is_dir():
            for d in root.iterdir():
                b = d / "bin"
                if (b / "initdb").exists() and (b / "postgres").exists():
                    found.append((_version(d.name), b))
    return max(found)[1] if found else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def ensure_binaries() -> Path:
    """The server bin directory; installs Debian's `postgresql` package first if none is there (root only)."""
    found = find_bin_dir()
    if found is not None:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PostgresError("no PostgreSQL server binaries (initdb, postgres): install Debian's postgresql package")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise PostgresError(f"{' '.join(cmd)} failed: {done.stderr.strip()[-500:]}")
    found = find_bin_dir()
    if found is None:
        raise PostgresError("installed Debian's postgresql package but found no initdb/postgres")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _traversable_by_others(path: Path) -> bool:
    """Every ancestor of `path` lets other users through (the server runs as another OS user)."""
    for p in [path, *path.parents]:
        if p.exists() and not p.stat().st_mode & stat.S_IXOTH:
            return False
    return True


class PostgresServer:
    """One PostgreSQL server with a password-protected database `swoosh` owned by the role `swoosh`."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        listen: str | None = None,
        launcher: list[str] | None = None,
        durable: bool = False,
    ) -> None:
        """`root` holds the data directory (a fresh temporary folder when None or unreachable by the
        server's OS user); `listen` is the address the server binds (default `host`); `durable=False`
        turns fsync off (tests only)."""
        self._own_root = root is None or (os.geteuid() == 0 and not _traversable_by_others(Path(root).resolve()))
        if self._own_root:
            self.root = Path(tempfile.mkdtemp(prefix="swoosh-pg-"))
            self.root.chmod(0o755)
        else:
            assert root is not None
            self.root = Path(root).resolve()
        self.host = host
        self.listen = listen or host
        self.port = port or free_port()
        self.launcher = list(launcher or [])
        self.durable = durable
        self.password = secrets.token_urlsafe(18)
        self.popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "pgdata"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        """A libpq URI for the `swoosh` database (contains the password: treat it as a secret)."""
        return f"postgresql://{DB_USER}:{self.password}@{self.host}:{self.port}/{DB_NAME}"

    @property
    def admin_dsn(self) -> str:
        """The same role on the `postgres` maintenance database."""
        return f"postgresql://{DB_USER}:{self.password}@{self.host}:{self.port}/postgres"

    def _as_server_user(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--"]

    def _owned(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam(OS_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def initdb(self, bin_dir: Path) -> None:
        """Create the data directory, the role `swoosh` (password auth on TCP) and its database."""
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        (self.root / "password").write_text(self.password + "\n", encoding="utf-8")
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        self._owned(pwfile)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        self._owned(self.data_dir)
        cmd = [
            *self._as_server_user(), str(bin_dir / "initdb"), "-D", str(self.data_dir),
            "-U", DB_USER, f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
            "-E", "UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        pwfile.unlink()
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {(done.stderr or done.stdout).strip()[-800:]}")
        with (self.data_dir / "pg_hba.conf").open("a", encoding="utf-8") as fh:
            fh.write("host all all 0.0.0.0/0 scram-sha-256\n")

    def start(self, timeout_s: float = 60.0) -> None:
        """initdb on the first start, then start the server and wait until it accepts the role's password."""
        bin_dir = ensure_binaries()
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb(bin_dir)
        else:
            self.password = (self.root / "password").read_text(encoding="utf-8").strip()
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not self._postmaster_alive():
            stale.unlink()
        cmd = [
            *self.launcher, *self._as_server_user(), str(bin_dir / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-c", f"listen_addresses={self.listen}", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "shared_buffers=32MB", "-c", "logging_collector=off",
        ]  # fmt: skip
        if not self.durable:
            cmd += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready(timeout_s)

    def _postmaster_alive(self) -> bool:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _wait_ready(self, timeout_s: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        last = "not started"
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise PostgresError(f"postgres exited ({self.popen.returncode}); see {self.log_path}")
            try:
                with psycopg.connect(self.admin_dsn, connect_timeout=2, autocommit=True) as conn:
                    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
                        conn.execute(f"CREATE DATABASE {DB_NAME}")
                    return
            except psycopg.OperationalError as err:
                last = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            time.sleep(0.1)
        self.stop()
        raise PostgresError(f"postgres refused connections for {timeout_s:.0f}s ({last}); see {self.log_path}")

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, *, kill: bool = False, timeout_s: float = 20.0) -> None:
        """Fast shutdown (SIGINT to the postmaster we started), SIGKILL after `timeout_s` or when `kill`."""
        proc = self.popen
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGKILL if kill else signal.SIGINT)
                try:
                    proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait()
            self.popen = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def remove(self) -> None:
        """Stop and delete the folder (only a folder this object created itself)."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


__all__ = ["PostgresError", "PostgresServer", "ensure_binaries", "find_bin_dir"]
