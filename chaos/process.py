"""Child processes of a chaos stack: start with a log file, stop (SIGTERM or SIGKILL), never leak."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]

_live: set[subprocess.Popen[bytes]] = set()


def _reap_leftovers() -> None:
    """Last resort at interpreter exit: never leave a child of ours running."""
    for proc in list(_live):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


atexit.register(_reap_leftovers)


class StackError(RuntimeError):
    """A stack process did not start or become ready in time (the message names its log file)."""


def free_port() -> int:
    """An ephemeral TCP port free on loopback right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


@dataclass
class Proc:
    """One child process: how to start it, where it logs, and the running Popen (None when stopped)."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: IO[bytes] | None = field(default=None, repr=False)
    _log_offset: int = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.running():
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()
        banner = f"\n=== {self.name} start #{self.starts + 1} at {time.strftime('%H:%M:%S')}: {' '.join(self.cmd)}\n"
        self._log.write(banner.encode())
        self._log.flush()
        self._log_offset = self._log.tell()
        # A new session: a Ctrl-C aimed at the harness does not reach the children; we stop them ourselves.
        self.popen = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=str(REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live.add(self.popen)
        self.starts += 1

    def log_since_start(self) -> bytes:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._log_offset)
                return fh.read()
        except OSError:
            return b""

    async def stop(self, *, kill: bool = False, timeout_s: float = 15.0) -> int | None:
        """SIGKILL (kill=True) or SIGTERM then SIGKILL after `timeout_s`; returns the exit code."""
        proc = self.popen
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        code = await asyncio.to_thread(proc.wait)
        _live.discard(proc)
        self.popen = None
        if self._log is not None:
            self._log.write(f"=== {self.name} exited with {code}\n".encode())
            self._log.close()
            self._log = None
        return code


__all__ = ["HOST", "REPO_ROOT", "Proc", "StackError", "free_port", "port_open"]


async def cancel_on_signal(coro: Any) -> Any:
    """Await `coro`; SIGTERM/SIGINT cancel it, so `async with Stack` blocks always stop their processes."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("interrupted: every process this run started was stopped", file=sys.stderr)
        raise SystemExit(130) from None
