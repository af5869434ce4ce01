"""What a project's workflow tells operators: a span, a log line and metrics per transition, each once.

Every accepted transition (Update, Signal or system) gets one `swoosh.transition` span with the
contract's attributes and one `swoosh.guard` event per guard outcome, one JSON log line and its
metrics; a proposal the workflow itself rejects gets a span carrying the error code and failing
guard. All three channels are silent while the workflow replays history, so a replay (a worker
without cache, a restarted worker, `swoosh replay`) adds nothing:

- spans come from the process's tracer provider, the SDK's replay-safe one when tracing is on
  (it never ends a span while replaying, and draws span ids from the workflow's deterministic
  randomness); when tracing is off every span is a no-op;
- the log line goes through `workflow.logger`, which drops records while replaying (and a worker
  does not log the same transition twice when a failed workflow task is retried on it);
- metrics go through `workflow.metric_meter()`, which records nothing while replaying.

None of this emits a command, so none of it can change what the workflow does.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanContext
from temporalio import workflow

from swoosh.guards.policy import redact
from swoosh.workflows.answers import Accepted, GuardResult, Rejected
from swoosh.workflows.hlc import HLC, HLCFormatError
from swoosh.workflows.statechart import GuardName, Statechart

TRACER_NAME = "swoosh.workflow"
SPAN_TRANSITION = "swoosh.transition"
SPAN_DELIVER = "swoosh.deliver"
EVENT_GUARD = "swoosh.guard"
REASON_CHARS = 512  # a rejection's reason on a span, after redaction
# Top-level states whose time is measured from entering to leaving (swoosh_recovery_time_seconds).
TIMED_STATES = ("RECOVERY", "QUARANTINED")
GUARDS: tuple[str, ...] = GuardName.__args__  # type: ignore[attr-defined]
ROOT = otel_context.Context()  # a parent that starts a new trace (timers, queued signals without a caller's context)


@dataclass(frozen=True)
class Metric:
    """One workflow-side metric: its Prometheus name, help text and (histograms) bucket bounds."""

    name: str
    help: str
    buckets: tuple[float, ...] = ()


TRANSITIONS = Metric("swoosh_transition_total", "Accepted transitions, every path (Update, Signal, system)")
GUARD_FAILS = Metric("swoosh_guard_fail_total", "Proposals rejected by a guard, by the failing guard")
QUARANTINES = Metric("swoosh_quarantine_total", "Transitions into QUARANTINED")
LATENCY = Metric(
    "swoosh_state_advance_latency_seconds",
    "From the proposal's HLC to the workflow applying it, by the region (epoch) it advances",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
)
RECOVERY = Metric(
    "swoosh_recovery_time_seconds",
    "Time in RECOVERY or QUARANTINED, from the HLC of entering to the HLC of leaving",
    (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0),
)
WAL_LAG = Metric("swoosh_wal_lag_records", "Accepted transitions since the project's last snapshot")
BACKLOG = Metric("swoosh_decision_backlog_records", "Decision records waiting for the sink")
BACKPRESSURE = Metric(
    "swoosh_decision_backpressure", "1 while new transitions are turned away because the decision-record sink is behind"
)
COUNTERS = (TRANSITIONS, GUARD_FAILS, QUARANTINES)
HISTOGRAMS = (LATENCY, RECOVERY)
GAUGES = (WAL_LAG, BACKLOG, BACKPRESSURE)


def timed_states_of(chart: Statechart, transition: str) -> tuple[tuple[str, ...], str | None]:
    """The timed states a transition leaves (it names them as its source) and the one it enters."""
    t = chart.transitions.get(transition)
    if t is None or t.spec.machine != "top":
        return (), None
    spec = t.spec
    leaves = tuple(s for s in TIMED_STATES if isinstance(spec.from_, tuple) and s in spec.from_ and spec.to != s)
    enters = "QUARANTINED" if enters_quarantine(chart, transition) else spec.to if spec.to == "RECOVERY" else None
    return leaves, enters


def enters_quarantine(chart: Statechart, transition: str) -> bool:
    t = chart.transitions.get(transition)
    return t is not None and (t.spec.to == "QUARANTINED" or any(e.op == "quarantine" for e in t.spec.effects))


def _hlc_ms(text: str | None) -> int | None:
    try:
        return HLC.parse(text).wall_ms if text else None
    except HLCFormatError:
        return None


@contextmanager
def current(span: Span) -> Iterator[Span]:
    """`span` is the current span for the block, then ends; safe for workflow code that may be abandoned.

    OpenTelemetry's own `use_span` detaches its context in `finally`. When the worker evicts a
    workflow that is waiting inside the block, the coroutine is closed wherever garbage collection
    runs: the detach then belongs to another `contextvars.Context`, and OpenTelemetry logs the
    failure with a traceback. Here a detach that is not ours is skipped silently, and an abandoned
    span (closed by `GeneratorExit` or cancelled) is never ended, so it is never exported.
    """
    ctx = trace.set_span_in_context(span)
    token = otel_context.attach(ctx)
    try:
        yield span
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}")
        _detach(ctx, token)
        span.end()
        raise
    except BaseException:
        _detach(ctx, token)
        raise
    _detach(ctx, token)
    span.end()


def _detach(ctx: otel_context.Context, token: Token[otel_context.Context]) -> None:
    if otel_context.get_current() is not ctx:
        return
    try:
        token.var.reset(token)
    except ValueError:  # the token belongs to another contextvars.Context
        pass


_logged: OrderedDict[tuple[str, int, str], None] = OrderedDict()  # this process's recent log lines
_logged_lock = threading.Lock()
LOGGED_REMEMBERED = 65_536


def _first_time(key: tuple[str, int, str]) -> bool:
    """True the first time this process logs a transition (project, index, post hash)."""
    if _replaying():
        return True  # workflow.logger drops it anyway; do not remember a line never written
    with _logged_lock:
        if key in _logged:
            return False
        _logged[key] = None
        if len(_logged) > LOGGED_REMEMBERED:
            _logged.popitem(last=False)
    return True


def _replaying() -> bool:
    return workflow.unsafe.is_replaying_history_events()


class Observer:
    """One workflow run's spans, log lines and metrics (create it in the workflow's `__init__`)."""

    def __init__(self, chart: Statechart, project_id: str, entered: dict[str, int] | None = None) -> None:
        self.chart = chart
        self.project_id = project_id
        # When the project entered RECOVERY / QUARANTINED (HLC wall ms); carried across snapshots.
        self.entered: dict[str, int] = dict(entered or {})
        # The span of each accepted transition whose decision record is not delivered yet.
        self.spans: dict[int, SpanContext] = {}
        self.tracer = trace.get_tracer(TRACER_NAME)
        meter = workflow.metric_meter()
        self.transitions = meter.create_counter(TRANSITIONS.name, TRANSITIONS.help)
        self.guard_fails = meter.create_counter(GUARD_FAILS.name, GUARD_FAILS.help)
        self.quarantines = meter.create_counter(QUARANTINES.name, QUARANTINES.help)
        self.latency = meter.create_histogram_float(LATENCY.name, LATENCY.help, "s")
        self.recovery = meter.create_histogram_float(RECOVERY.name, RECOVERY.help, "s")
        self.wal_lag = meter.create_gauge(WAL_LAG.name, WAL_LAG.help)
        self.backlog = meter.create_gauge(BACKLOG.name, BACKLOG.help)
        self.backpressure = meter.create_gauge(BACKPRESSURE.name, BACKPRESSURE.help)
        self._gauges: tuple[int, int, int] | None = None

    # ------------------------------------------------------------------ spans
    @contextmanager
    def transition_span(self, parent: otel_context.Context | None = None) -> Iterator[Span]:
        """A `swoosh.transition` span, current for the block; `parent` None = the current context."""
        with current(self.tracer.start_span(SPAN_TRANSITION, context=parent)) as span:
            yield span

    def accepted(self, span: Span, answer: Accepted, record: dict[str, Any], now_ms: int) -> None:
        """An accepted transition: its span's attributes, its log line and its metrics."""
        index = answer.index
        ctx = span.get_span_context()
        if ctx.is_valid:
            self.spans[index] = ctx
        if span.is_recording() and not _replaying():
            attributes: dict[str, Any] = {
                "swoosh.project_id": answer.project_id,
                "swoosh.transition": answer.transition,
                "swoosh.index": index,
                "swoosh.hlc": answer.hlc,
                "swoosh.state_pre_hash": answer.state_pre_hash,
                "swoosh.state_post_hash": answer.state_post_hash,
                "swoosh.evidence": list(record.get("evidence") or []),
                "swoosh.signer": str(record.get("signer")),
                "swoosh.accepted": True,
            }
            if record.get("window_id") is not None:
                attributes["swoosh.window_id"] = str(record["window_id"])
            span.set_attributes(attributes)
            self._guard_events(span, answer.guards)
        self._log_accepted(answer, record, ctx)
        self.transitions.with_additional_attributes({"transition": answer.transition}).add(1)
        self._measure(answer, record, now_ms)

    def rejected(self, span: Span, transition: str | None, rejected: Rejected) -> None:
        """A proposal the workflow rejected: the error code and failing guard on its span, and the guard metric."""
        if rejected.error == "guard_failed" and rejected.failing_guard:
            self.guard_fails.with_additional_attributes({"guard": rejected.failing_guard}).add(1)
        if not span.is_recording() or _replaying():
            return
        attributes: dict[str, Any] = {
            "swoosh.project_id": self.project_id,
            "swoosh.accepted": False,
            "swoosh.error": rejected.error,
            "swoosh.reason": str(redact(rejected.reason))[:REASON_CHARS],
        }
        if transition:
            attributes["swoosh.transition"] = transition
        if rejected.failing_guard:
            attributes["swoosh.failing_guard"] = rejected.failing_guard
        span.set_attributes(attributes)
        self._guard_events(span, rejected.guards)

    def duplicate(self, span: Span, answer: Accepted) -> None:
        """A proposal found applied already (under the same idem_key) after its guards ran."""
        if span.is_recording() and not _replaying():
            attributes = {"swoosh.project_id": answer.project_id, "swoosh.transition": answer.transition}
            span.set_attributes({**attributes, "swoosh.duplicate": True})

    @staticmethod
    def _guard_events(span: Span, guards: Sequence[GuardResult]) -> None:
        for g in guards:
            span.add_event(EVENT_GUARD, {"guard": g.guard, "ok": g.ok, "reasons": [str(redact(r)) for r in g.reasons]})

    @contextmanager
    def delivery_span(self, batch: Sequence[dict[str, Any]]) -> Iterator[None]:
        """A `swoosh.deliver` span in the trace of each transition the batch delivers.

        The delivery activity runs under the first one; the others link to it.
        """
        contexts: list[SpanContext] = []
        for record in batch:
            ctx = self.spans.get(int(record["index"]))
            if ctx is not None and all(c.trace_id != ctx.trace_id for c in contexts):
                contexts.append(ctx)
        attributes: dict[str, Any] = {"swoosh.project_id": self.project_id, "swoosh.records": len(batch)}
        if batch:  # a delivery may carry receipts only
            attributes["swoosh.first_index"] = int(batch[0]["index"])
            attributes["swoosh.last_index"] = int(batch[-1]["index"])
        first = trace.set_span_in_context(trace.NonRecordingSpan(contexts[0])) if contexts else ROOT
        with current(self.tracer.start_span(SPAN_DELIVER, context=first, attributes=attributes)) as main:
            link = [Link(main.get_span_context())]
            others = [
                self.tracer.start_span(
                    SPAN_DELIVER,
                    context=trace.set_span_in_context(trace.NonRecordingSpan(c)),
                    attributes=attributes,
                    links=link,
                )
                for c in contexts[1:]
            ]
            try:
                yield
            except BaseException as exc:
                for span in others:
                    span.record_exception(exc)
                    span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                raise
            finally:
                for span in others:
                    span.end()

    def delivered(self, last_index: int) -> None:
        for index in [i for i in self.spans if i <= last_index]:
            del self.spans[index]

    # ------------------------------------------------------------------ logs
    def _log_accepted(self, answer: Accepted, record: dict[str, Any], ctx: SpanContext) -> None:
        # `workflow.logger` drops records while replaying; a retried workflow task on this worker
        # would log its transitions again: one line per accepted transition.
        if not _first_time((answer.project_id, answer.index, answer.state_post_hash)):
            return
        workflow.logger.info(
            "accepted %s at index %d",
            answer.transition,
            answer.index,
            extra={
                "swoosh": {
                    "event": "transition_applied",
                    "project_id": answer.project_id,
                    "index": answer.index,
                    "transition": answer.transition,
                    "signer": record.get("signer"),
                    "idem_key": answer.idem_key,
                    "hlc": answer.hlc,
                    "window_id": record.get("window_id"),
                    "state_pre_hash": answer.state_pre_hash,
                    "state_post_hash": answer.state_post_hash,
                    "trace_id": format(ctx.trace_id, "032x") if ctx.is_valid else None,
                }
            },
        )

    # ------------------------------------------------------------------ metrics
    def _measure(self, answer: Accepted, record: dict[str, Any], now_ms: int) -> None:
        name = answer.transition
        t = self.chart.transitions.get(name)
        hlc_ms = _hlc_ms(answer.hlc)
        if t is not None and not t.spec.system and hlc_ms is not None:
            seconds = max(0, now_ms - hlc_ms) / 1000
            self.latency.with_additional_attributes({"region": t.spec.epoch}).record(seconds)
        leaves, enters = timed_states_of(self.chart, name)
        if hlc_ms is not None:
            for state in leaves:
                since = self.entered.pop(state, None)
                if since is not None:
                    self.recovery.with_additional_attributes({"state": state}).record(max(0, hlc_ms - since) / 1000)
            if enters is not None:
                self.entered.setdefault(enters, hlc_ms)
        if enters_quarantine(self.chart, name):
            self.quarantines.add(1)

    def gauges(self, wal_lag: int, backlog: int, backpressure: bool) -> None:
        """The project's WAL lag, decision-record backlog and back-pressure, when they change."""
        values = (wal_lag, backlog, int(backpressure))
        if values == self._gauges or _replaying():
            return
        self._gauges = values
        labels = {"project_id": self.project_id}
        self.wal_lag.with_additional_attributes(labels).set(wal_lag)
        self.backlog.with_additional_attributes(labels).set(backlog)
        self.backpressure.with_additional_attributes(labels).set(int(backpressure))
