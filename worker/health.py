"""`GET /livez` and `GET /readyz` for processes without an HTTP API of their own (the worker).

A deliberately small HTTP/1.1 responder on asyncio: one request per connection, the request head
bounded in size and time, JSON answers. `/livez` says the process is up and its main task alive
(a liveness probe that restarts it only when it is stuck or dead); `/readyz` runs the readiness
checks (Temporal reachable, the decision-record store usable) and answers 503 with the reason when
one fails, so a Temporal blip takes the process out of rotation without restarting it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

MAX_HEAD_BYTES = 8192
HEAD_TIMEOUT_S = 5.0

Check = Callable[[], Awaitable[str | None]]  # None = fine, else the reason it is not
Live = Callable[[], str | None]


class HealthServer:
    """Serves `/livez` (the `live` check) and `/readyz` (`live`, then each readiness check in order)."""

    def __init__(self, bind: str, live: Live, checks: list[Check], *, check_timeout_s: float = 5.0) -> None:
        host, _, port = bind.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.live = live
        self.checks = checks
        self.check_timeout_s = check_timeout_s
        self._server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        """host:port actually bound (the port is chosen by the system when configured as 0)."""
        assert self._server is not None
        return f"{self.host}:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> HealthServer:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_HEAD_BYTES)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def livez(self) -> tuple[int, dict[str, Any]]:
        reason = self.live()
        return (200, {"status": "ok"}) if reason is None else (503, {"status": "down", "reason": reason})

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = await self.livez()
        if status != 200:
            return status, body
        for check in self.checks:
            try:
                async with asyncio.timeout(self.check_timeout_s):
                    reason = await check()
            except TimeoutError:
                reason = f"a readiness check took longer than {self.check_timeout_s:g} s"
            if reason is not None:
                return 503, {"status": "unready", "reason": reason}
        return 200, {"status": "ready"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(HEAD_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            status, body = await self._answer(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            status, body = 400, {"status": "bad_request"}
        payload = json.dumps(body).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}.get(
            status, "Service Unavailable"
        )
        extra = "Retry-After: 5\r\n" if status == 503 else ""
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
            f"Cache-Control: no-store\r\n{extra}Connection: close\r\n\r\n".encode()
            + payload
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _answer(self, head: bytes) -> tuple[int, dict[str, Any]]:
        if len(head) > MAX_HEAD_BYTES:
            return 400, {"status": "bad_request"}
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if path not in ("/livez", "/readyz"):
            return 404, {"status": "not_found", "reason": "GET /livez or /readyz"}
        if method != "GET":
            return 405, {"status": "method_not_allowed"}
        return await (self.livez() if path == "/livez" else self.readyz())
