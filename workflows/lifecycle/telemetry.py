"""Tracing for every SWOOSH process, configured only by the standard OpenTelemetry variables.

`OTEL_TRACES_EXPORTER` (`otlp`, `console`, `none`, or a comma-separated list; default `none`) decides
whether a process traces at all. With `none` nothing is installed: no tracer provider, no Temporal
plugin, no HTTP instrumentation, so an untraced process pays nothing. Otherwise the process gets
one tracer provider (the SDK's replay-safe one, so workflow code never ends a span while it replays
history) and `connect()` puts Temporal's `OpenTelemetryPlugin` on every client, which puts it on
every worker built from that client: a caller's trace context rides in Temporal headers into
Updates, Signals and activities.

The OTLP exporter reads its own variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `..._HEADERS`, …);
`OTEL_EXPORTER_OTLP_PROTOCOL` (or `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`) picks `http/protobuf`
(the default) or `grpc`. `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` name the process;
without them each process names itself (`swoosh-worker`, `swoosh-api`, …).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from temporalio.plugin import SimplePlugin

from swoosh.workflows.errors import ConfigError

EXPORTER_VAR = "OTEL_TRACES_EXPORTER"
PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
SERVICE_VAR = "OTEL_SERVICE_NAME"
EXPORTERS = frozenset({"otlp", "console", "none"})
PROTOCOLS = ("http/protobuf", "grpc")
# Span ids a worker remembers to drop a second export of the same span (see `_ExportOnce`).
SEEN_SPANS = 65_536

_lock = threading.Lock()
_state: dict[str, Any] = {"decided": False, "enabled": False, "plugin": None}


def exporters_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters `OTEL_TRACES_EXPORTER` names (empty for `none`); ConfigError for an unknown one."""
    env = os.environ if environ is None else environ
    raw = env.get(EXPORTER_VAR, "none")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()] or ["none"]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise ConfigError(f"{EXPORTER_VAR}: unknown exporter {unknown[0]!r}; use otlp, console or none")
    if "none" in names and len(names) > 1:
        raise ConfigError(f"{EXPORTER_VAR}: 'none' cannot be combined with other exporters")
    return [n for n in names if n != "none"]


def _protocol(environ: Mapping[str, str]) -> str:
    for var in PROTOCOL_VARS:
        value = environ.get(var, "").strip().lower()
        if value:
            if value not in PROTOCOLS:
                raise ConfigError(f"{var}: {value!r} is not supported here; use http/protobuf or grpc")
            return value
    return "http/protobuf"


def _span_exporter(name: str, environ: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if _protocol(environ) == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def configure_from_env(service: str = "swoosh", environ: Mapping[str, str] | None = None) -> bool:
    """Decide once per process, from `OTEL_*`, whether it traces; True when it does.

    `service` names the process when `OTEL_SERVICE_NAME` does not. The first decision stands: later
    calls (every `connect()` makes one) return it.
    """
    with _lock:
        if _state["decided"]:
            return bool(_state["enabled"])
    env = os.environ if environ is None else environ
    names = exporters_from_env(env)
    if not names:
        with _lock:
            _state["decided"] = True
        return False
    exporters = [_span_exporter(n, env) for n in names]
    return install(exporters, service=service, batch=True)


def install(exporters: Sequence[Any], *, service: str = "swoosh", batch: bool = True) -> bool:
    """Install the process's tracer provider with these span exporters (once; tests use it directly).

    Returns True; raises RuntimeError when another tracer provider is already installed.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin

    with _lock:
        if _state["enabled"]:
            return True
        resource = Resource.create({} if os.environ.get(SERVICE_VAR) else {SERVICE_NAME: service})
        provider = _replay_safe_provider(resource)
        for exporter in exporters:
            processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
            provider.add_span_processor(_ExportOnce(processor))
        trace.set_tracer_provider(provider)
        if trace.get_tracer_provider() is not provider:
            raise RuntimeError("another OpenTelemetry tracer provider is installed in this process")
        _instrument_httpx()
        logging.getLogger("opentelemetry.context").addFilter(_drop_abandoned_detach)
        _state.update(decided=True, enabled=True, plugin=OpenTelemetryPlugin(add_temporal_spans=True))
        return True


def _replay_safe_provider(resource: Any) -> Any:
    """The SDK's replay-safe tracer provider, with span ids that a retried workflow task repeats.

    Inside workflow code the SDK draws span ids from the workflow's randomness, which Temporal
    reseeds after a failed workflow task: the retry would re-create its spans under new ids. Here
    the n-th span a run creates gets an id derived from the run id and n instead, the same in every
    replay and every retry on any worker, so a second export of it is recognisably the same span.
    """
    import opentelemetry.sdk.trace as trace_sdk
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider, create_tracer_provider

    try:
        from temporalio.contrib.opentelemetry._id_generator import TemporalIdGenerator
    except ImportError:  # pragma: no cover - depends on the installed SDK
        return create_tracer_provider(resource=resource)

    class RunSequenceIdGenerator(TemporalIdGenerator):
        def _next(self, salt: str, bits: int, fallback: Any) -> int:
            from temporalio import workflow

            if not workflow.in_workflow() or workflow.unsafe.is_read_only():
                return int(fallback())
            instance = workflow.instance()
            n = int(getattr(instance, "__swoosh_span_seq", 0)) + 1
            setattr(instance, "__swoosh_span_seq", n)
            digest = hashlib.sha256(f"{workflow.info().run_id}:{n}:{salt}".encode()).digest()
            return int.from_bytes(digest[: bits // 8], "big") or 1

        def generate_span_id(self) -> int:
            return self._next("span", 64, self._id_generator.generate_span_id)

        def generate_trace_id(self) -> int:
            return self._next("trace", 128, self._id_generator.generate_trace_id)

    generator = RunSequenceIdGenerator(RandomIdGenerator())
    provider = trace_sdk.TracerProvider(resource=resource, id_generator=generator)
    return ReplaySafeTracerProvider(provider, generator)


def enabled() -> bool:
    """Whether this process traces (decided by `configure_from_env` or `install`)."""
    return bool(_state["enabled"])


def dropped_duplicates() -> int:
    """Spans this process dropped as second exports of a span it had exported (see `_ExportOnce`)."""
    return _ExportOnce.dropped


def client_plugins(service: str = "swoosh") -> list[SimplePlugin]:
    """The Temporal plugins `connect()` puts on a client: the OpenTelemetry plugin when tracing."""
    if not configure_from_env(service):
        return []
    plugin: SimplePlugin = _state["plugin"]
    return [plugin]


def _drop_abandoned_detach(record: logging.LogRecord) -> bool:
    """Drop OpenTelemetry's "Failed to detach context" for spans of abandoned workflow coroutines.

    When a worker evicts a workflow (or a workflow task fails), the coroutines waiting inside the
    plugin's workflow spans are closed wherever garbage collection runs; the detach then belongs to
    another `contextvars.Context` and fails harmlessly (the SDK guards its own detaches the same
    way). The record would carry a traceback, formatted inside garbage collection: noise at best, and
    on CPython 3.11 that formatting parses source with `ast`, which can corrupt an `ast` call it
    interrupted ("AST constructor recursion depth mismatch").
    """
    return record.getMessage() != "Failed to detach context"


def _instrument_httpx() -> None:
    """Every httpx client (providers, the BUBBLE sink, the Python client) propagates and records."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


class _ExportOnce(SpanProcessor):
    """A span processor that passes each (trace id, span id) on once.

    Workflow code gets span ids from its run's sequence of spans (`_replay_safe_provider`), so a
    workflow task that failed after a span ended and is retried on this worker re-creates the very
    same span: the second one is dropped here. (Replays never end a span at all.)
    """

    dropped = 0

    def __init__(self, inner: SpanProcessor, remember: int = SEEN_SPANS) -> None:
        self.inner = inner
        self.remember = remember
        self._seen: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        self.inner._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        ctx = span.get_span_context()
        if ctx is None:
            return
        key = (ctx.trace_id, ctx.span_id)
        with self._lock:
            if key in self._seen:
                _ExportOnce.dropped += 1
                return
            self._seen[key] = None
            if len(self._seen) > self.remember:
                self._seen.popitem(last=False)
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))
