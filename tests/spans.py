"""An in-memory span exporter for tests, installed once per test process, and helpers to read traces."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swoosh.workflows.lifecycle import telemetry

_exporter: InMemorySpanExporter | None = None


def memory_exporter() -> InMemorySpanExporter:
    """The process's tracer provider exporting to memory (installed on first use; tracing is then on)."""
    global _exporter
    if _exporter is None:
        exporter = InMemorySpanExporter()
        telemetry.install([exporter], service="swoosh-test", batch=False)
        _exporter = exporter
    return _exporter


def in_trace(spans: Sequence[ReadableSpan], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


def wait_for(
    exporter: InMemorySpanExporter, ready: Callable[[list[ReadableSpan]], bool], timeout_s: float = 20.0
) -> list[ReadableSpan]:
    """The finished spans once `ready` holds for them (spans of other tests may be among them)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = list(exporter.get_finished_spans())
        if ready(spans):
            return spans
        if time.monotonic() > deadline:
            traces: dict[int, list[ReadableSpan]] = {}
            for s in spans:
                traces.setdefault(s.context.trace_id if s.context else 0, []).append(s)
            shown = "\n\n".join(f"trace {t:032x}\n{tree(v)}" for t, v in traces.items())
            raise AssertionError(f"the expected spans did not arrive; have:\n{shown}")
        time.sleep(0.05)


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan | None:
    if span.parent is None:
        return None
    return next((s for s in spans if s.context is not None and s.context.span_id == span.parent.span_id), None)


def tree(spans: Sequence[ReadableSpan], root_parent: int | None = None) -> str:
    """The spans of one trace as an indented tree (children in start order), for reading and for notes."""
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    ids = {s.context.span_id for s in spans if s.context is not None}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(s)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for s in sorted(by_parent.get(parent, []), key=lambda x: x.start_time or 0):
            a = attrs(s)
            keys = ("swoosh.transition", "swoosh.index", "swoosh.error", "swoosh.failing_guard", "swoosh.records")
            shown = ", ".join(f"{k.removeprefix('swoosh.')}={a[k]}" for k in keys if k in a)
            events = [e for e in s.events if e.name == "swoosh.guard"]
            guard = "; ".join(
                f"guard {dict(e.attributes or {}).get('guard')} ok={dict(e.attributes or {}).get('ok')}" for e in events
            )
            service = s.resource.attributes.get("service.name", "") if s.resource else ""
            extra = " ".join(p for p in (f"[{shown}]" if shown else "", f"{{{guard}}}" if guard else "") if p)
            lines.append(f"{'  ' * depth}{s.name} ({service}) {extra}".rstrip())
            if s.context is not None:
                walk(s.context.span_id, depth + 1)

    walk(root_parent, 0)
    return "\n".join(lines)
