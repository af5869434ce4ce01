"""Waiting until a started process of a chaos stack is ready; if it exits or times out, a `StackError` naming its log.

The Temporal dev server is ready when it answers a health check, a worker when its log says it
polls its task queue, the API and the simulator when an HTTP endpoint answers 200.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx
from temporalio.client import Client

from swoosh.chaos.process import Proc, StackError, port_open

WORKER_READY_LINE = b"swoosh worker: task queue"


def check_alive(proc: Proc, what: str) -> None:
    """Raise when `proc` was started and has exited already (`what` it did not get to do)."""
    if proc.popen is not None and proc.popen.poll() is not None:
        raise StackError(f"{proc.name} exited ({proc.popen.returncode}) before {what}; see {proc.log_path}")


async def wait_temporal(
    proc: Proc, address: str, port: int, connect: Callable[[], Awaitable[Client]], timeout_s: float
) -> None:
    """Until the dev server's port is open and a client connected by `connect` finds it healthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check_alive(proc, "it was ready")
        if port_open(port, address):
            try:
                client = await asyncio.wait_for(connect(), 5)
                if await client.service_client.check_health():
                    return
            except (RuntimeError, TimeoutError, OSError):
                pass
        await asyncio.sleep(0.2)
    raise StackError(f"the Temporal dev server did not become ready; see {proc.log_path}")


async def wait_worker(proc: Proc, timeout_s: float) -> None:
    """Until the worker's log, since its last start, says it polls its task queue."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check_alive(proc, "it polled")
        if WORKER_READY_LINE in proc.log_since_start():
            return
        await asyncio.sleep(0.1)
    raise StackError(f"{proc.name} did not start polling; see {proc.log_path}")


async def wait_http(
    proc: Proc, base_url: str, path: str, timeout_s: float, *, every_s: float, what: str
) -> httpx.Response:
    """Until GET `path` answers 200 (that answer); `what` names the process in the error."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            check_alive(proc, "it served")
            try:
                r = await http.get(path)
                if r.status_code == 200:
                    return r
            except httpx.HTTPError:
                pass
            await asyncio.sleep(every_s)
    raise StackError(f"{what} did not become ready; see {proc.log_path}")
