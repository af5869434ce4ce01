"""The worker's metrics port (`--metrics-bind`): `GET /metrics` in Prometheus text format.

A small HTTP/1.1 server on the worker's event loop. The text is `MetricsRuntime.exposition()`: the
Temporal SDK's own metrics and the workflow-side swoosh_* metrics, with zero series for what has not
happened yet (see `workflows/lifecycle/runtime.py`). Other paths can be added to `routes` (each a
function returning status, content type and body); anything else is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from swoosh.workflows.lifecycle.runtime import MetricsRuntime

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST_BYTES = 8192
READ_TIMEOUT_S = 10.0
Route = Callable[[], Awaitable[tuple[int, str, bytes]]]
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class MetricsServer:
    def __init__(self, runtime: MetricsRuntime) -> None:
        self.runtime = runtime
        self.routes: dict[str, Route] = {"/metrics": self._metrics}
        self._server: asyncio.Server | None = None

    async def _metrics(self) -> tuple[int, str, bytes]:
        try:
            text = await asyncio.to_thread(self.runtime.exposition)
        except OSError as err:
            return 503, "text/plain", f"SDK metrics unavailable: {type(err).__name__}\n".encode()
        return 200, PROMETHEUS_TEXT, text.encode("utf-8")

    async def start(self, bind: str) -> MetricsServer:
        host, _, port = bind.rpartition(":")
        self._server = await asyncio.start_server(self._handle, host or "127.0.0.1", int(port))
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            if len(head) > MAX_REQUEST_BYTES:
                await self._answer(writer, 400, "text/plain", b"request too large\n", False)
                return
            method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            route = self.routes.get(path)
            if route is None:
                await self._answer(writer, 404, "text/plain", b"not found\n", method == "HEAD")
            elif method not in ("GET", "HEAD"):
                await self._answer(writer, 405, "text/plain", b"method not allowed\n", False)
            else:
                status, content_type, body = await route()
                await self._answer(writer, status, content_type, body, method == "HEAD")
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, status: int, content_type: str, body: bytes, head: bool) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            "",
            "",
        ]
        writer.write("\r\n".join(lines).encode("latin-1") + (b"" if head else body))
        await writer.drain()
