"""A stand-in OpenTelemetry collector for `make bench` with tracing: accepts OTLP/HTTP and discards it.

Run as `python -m tests.bench.otlp_sink PORT`; prints `ready` once listening. It answers every
`POST /v1/traces` with 200 and counts requests and bytes (printed on SIGTERM), so the benchmark
measures what exporting spans costs SWOOSH's processes, not what a real collector does with them.
"""

from __future__ import annotations

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

RECEIVED = {"requests": 0, "bytes": 0}
_lock = threading.Lock()


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        with _lock:
            RECEIVED["requests"] += 1
            RECEIVED["bytes"] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


def main(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), Sink)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    server.serve_forever()
    print(f"otlp sink received {RECEIVED['requests']} requests, {RECEIVED['bytes']} bytes", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
