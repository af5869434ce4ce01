"""The Temporal runtime of a SWOOSH process: SDK metrics and the workflow's swoosh_* metrics for Prometheus.

The SDK's exporter listens on a private loopback port; the process serves `/metrics` itself
(the worker on `--metrics-bind`, the API on its own `/metrics`) with `exposition()`: the SDK's text
plus zero series for what has not happened yet. Prometheus's own guidance is to export every known
series from the start, or `increase()` and alerts miss the first event: counters are set to zero
here for every transition and guard of the statechart, and the two workflow-side histograms (which
the SDK's exporter shows only after a first observation) get zero series per region and per timed
state until the SDK shows real ones.

Every series carries the global tags `service` (`swoosh-worker`, `swoosh-api`, …) and
`swoosh_instance` (the host name unless configured), besides the SDK's own `service_name`.
Prometheus keeps its target label `instance` for the scraped address, hence not `instance`.
"""

from __future__ import annotations

import re
import socket
import urllib.request
from collections.abc import Iterable

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from swoosh.workflows.lifecycle.observe import (
    COUNTERS,
    GUARD_FAILS,
    GUARDS,
    HISTOGRAMS,
    LATENCY,
    QUARANTINES,
    RECOVERY,
    TIMED_STATES,
    TRANSITIONS,
    Metric,
)
from swoosh.workflows.messages import WORKFLOW_NAME
from swoosh.workflows.statechart import Statechart, default_statechart

SERVICE_TAG = "service"
INSTANCE_TAG = "swoosh_instance"
SCRAPE_TIMEOUT_S = 5.0
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_instance() -> str:
    return socket.gethostname() or "swoosh"


class MetricsRuntime:
    """A Temporal `Runtime` whose Prometheus exporter is read back by `exposition()`."""

    def __init__(self, service: str, instance: str | None = None, chart: Statechart | None = None) -> None:
        self.service = service
        self.instance = instance or default_instance()
        self.chart = chart or default_statechart()
        self.port = _free_loopback_port()
        buckets = {m.name: list(m.buckets) for m in HISTOGRAMS}
        prometheus = PrometheusConfig(bind_address=f"127.0.0.1:{self.port}", histogram_bucket_overrides=buckets)
        tags = {SERVICE_TAG: service, INSTANCE_TAG: self.instance}
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=prometheus, global_tags=tags))
        self._zero_labels: list[dict[str, str]] = []

    def zero_workflow_series(self, namespace: str, task_queue: str) -> None:
        """Counters at zero for every transition and guard, labelled as the workflow labels its own."""
        meter = self.runtime.metric_meter.with_additional_attributes(
            {"namespace": namespace, "task_queue": task_queue, "workflow_type": WORKFLOW_NAME}
        )
        transitions = meter.create_counter(TRANSITIONS.name, TRANSITIONS.help)
        for name in sorted(self.chart.transitions):
            transitions.add(0, {"transition": name})
        guard_fails = meter.create_counter(GUARD_FAILS.name, GUARD_FAILS.help)
        for guard in GUARDS:
            guard_fails.add(0, {"guard": guard})
        meter.create_counter(QUARANTINES.name, QUARANTINES.help).add(0)
        self._zero_labels.append({"namespace": namespace, "task_queue": task_queue})

    def sdk_text(self) -> str:
        """The SDK exporter's text (blocking; call it from a thread)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=SCRAPE_TIMEOUT_S) as resp:
            body: bytes = resp.read()
        return body.decode("utf-8")

    def exposition(self) -> str:
        """The SDK's text plus zero series for the workflow-side histograms not observed yet."""
        text = self.sdk_text()
        if not self._zero_labels:
            return text
        return with_zero_histograms(text, self._expected_histograms(text))

    def _expected_histograms(self, text: str) -> list[tuple[Metric, dict[str, str]]]:
        base = _base_labels(text)
        if base is None:
            return []
        regions = sorted({t.spec.epoch for t in self.chart.transitions.values() if not t.spec.system})
        out: list[tuple[Metric, dict[str, str]]] = []
        for zero in self._zero_labels:
            labels = {**base, **zero}
            out += [(LATENCY, {**labels, "region": r}) for r in regions]
            out += [(RECOVERY, {**labels, "state": s}) for s in TIMED_STATES]
        return out


def _base_labels(text: str) -> dict[str, str] | None:
    """The labels the SDK puts on every workflow-side series (from a zero counter), less its own label."""
    prefix = TRANSITIONS.name + "{"
    for line in text.splitlines():
        if line.startswith(prefix):
            m = _SERIES.match(line)
            if m and m.group(3):
                labels = dict(_LABEL.findall(m.group(3)))
                labels.pop("transition", None)
                return labels
    return None


def _format(name: str, labels: dict[str, str], value: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}} {value}"


def _zero_histogram(metric: Metric, labels: dict[str, str]) -> list[str]:
    lines = [_format(f"{metric.name}_bucket", {**labels, "le": _le(b)}, "0") for b in metric.buckets]
    lines.append(_format(f"{metric.name}_bucket", {**labels, "le": "+Inf"}, "0"))
    lines.append(_format(f"{metric.name}_sum", labels, "0"))
    lines.append(_format(f"{metric.name}_count", labels, "0"))
    return lines


def _le(bound: float) -> str:
    return str(int(bound)) if bound == int(bound) else repr(bound)


def with_zero_histograms(text: str, expected: Iterable[tuple[Metric, dict[str, str]]]) -> str:
    """`text` with a zero series added for each expected histogram series it does not have.

    A family's lines stay together: zero series join the family's block when the SDK shows the
    family already, else they come as a block of their own at the end.
    """
    lines = text.rstrip("\n").splitlines()
    present: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    last_line: dict[str, int] = {}
    for i, line in enumerate(lines):
        m = _SERIES.match(line)
        if m is None:
            continue
        for metric in HISTOGRAMS:
            if m.group(1).startswith(metric.name + "_"):
                last_line[metric.name] = i
                if m.group(1) == metric.name + "_count":
                    present.add((metric.name, frozenset(_LABEL.findall(m.group(3) or ""))))
    additions: dict[str, list[str]] = {}
    for metric, labels in expected:
        if (metric.name, frozenset(labels.items())) in present:
            continue
        additions.setdefault(metric.name, []).extend(_zero_histogram(metric, labels))
    for metric in sorted(HISTOGRAMS, key=lambda m: -last_line.get(m.name, -1)):
        added = additions.get(metric.name)
        if not added:
            continue
        at = last_line.get(metric.name)
        if at is None:
            lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} histogram", *added]
        else:
            lines[at + 1 : at + 1] = added
    return "\n".join(lines) + "\n"


__all__ = ["COUNTERS", "INSTANCE_TAG", "SERVICE_TAG", "MetricsRuntime", "default_instance", "with_zero_histograms"]
