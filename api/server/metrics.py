"""The API's own metrics, on a registry of the app's own, plus its Temporal client's SDK metrics.

The brief's `swoosh_transition_total`, `swoosh_guard_fail_total`, `swoosh_quarantine_total`,
`swoosh_state_advance_latency_seconds`, `swoosh_recovery_time_seconds` and `swoosh_wal_lag_records`
are the workflow's (exported by the worker: replay-safe, one value however many API replicas
answer, and they also see Signal and system transitions). The API counts the answers it returns
under `swoosh_api_*` names, so a Prometheus scraping both never counts a transition twice, and owns
`swoosh_retry_count` (retries are seen by callers and the API only). Every series the API knows of
is exported from the start (at zero), so `increase()` and alerts see the first event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.lifecycle.observe import GUARDS, enters_quarantine
from swoosh.workflows.statechart import Statechart, default_statechart

__all__ = ["METRIC_NAMES", "MIGRATION_METRIC_NAMES", "PROMETHEUS_CONTENT_TYPE", "ApiMetrics"]

METRIC_NAMES = (
    "swoosh_api_transition_total",
    "swoosh_api_guard_fail_total",
    "swoosh_api_state_advance_latency_seconds",
    "swoosh_retry_count",
    "swoosh_api_quarantine_total",
    "swoosh_api_responses_total",
)
# Migration from WHOOSH (docs/migration.md): what a replica routes where, and where the two systems disagree.
MIGRATION_METRIC_NAMES = (
    "swoosh_migration_mode",
    "swoosh_migration_version",
    "swoosh_migration_decided_total",
    "swoosh_legacy_unavailable_total",
    "swoosh_shadow_divergence_total",
    "swoosh_shadow_compared_total",
)
MODES = ("off", "shadow", "route", "bypass")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Status codes the API answers with; each is exported at zero from the start.
STATUS_CODES = ("200", "201", "202", "400", "401", "404", "405", "413", "429", "500", "503")


@dataclass
class ApiMetrics:
    """Prometheus metrics of one API app (its own registry, so several apps can share a process).

    `sdk_text`: when the API owns its Temporal client's runtime, a blocking function returning that
    runtime's SDK metrics (Prometheus text), appended to the exposition.
    """

    chart: Statechart = field(default_factory=default_statechart)
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    sdk_text: Callable[[], str] | None = None

    def __post_init__(self) -> None:
        r = self.registry
        self.transitions = Counter(
            "swoosh_api_transition_total", "Accepted transitions answered by the API", ["transition"], registry=r
        )
        self.guard_fails = Counter(
            "swoosh_api_guard_fail_total", "Guard rejections answered by the API", ["guard"], registry=r
        )
        self.latency = Histogram(
            "swoosh_api_state_advance_latency_seconds",
            "Request to accepted answer at the API, by the region (epoch) the transition advances",
            ["region"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # A gauge that only goes up: a prometheus_client Counter would be exposed as
        # `swoosh_retry_count_total`, and the brief fixes the name `swoosh_retry_count`.
        self.retries = Gauge(
            "swoosh_retry_count",
            "Retries of a transition (API-side and those the client reports)",
            ["transition"],
            registry=r,
        )
        self.quarantines = Counter(
            "swoosh_api_quarantine_total", "Transitions into QUARANTINED answered by the API", registry=r
        )
        self.responses = Counter(
            "swoosh_api_responses_total", "HTTP answers of the API, by status code", ["code"], registry=r
        )
        for name in sorted(self.chart.transitions):
            self.transitions.labels(transition=name)
            self.retries.labels(transition=name)
        self.retries.labels(transition="unknown")
        for guard in GUARDS:
            self.guard_fails.labels(guard=guard)
        for region in sorted({t.spec.epoch for t in self.chart.transitions.values()}):
            self.latency.labels(region=region)
        for code in STATUS_CODES:
            self.responses.labels(code=code)

        self.migration_mode = Gauge(
            "swoosh_migration_mode",
            "1 for the migration mode this API replica applies, 0 for the others",
            ["mode"],
            registry=r,
        )
        self.migration_version = Gauge(
            "swoosh_migration_version", "Version of the migration config this replica last read", registry=r
        )
        self.decided = Counter(
            "swoosh_migration_decided_total",
            "Mutations by who decided them (swoosh, legacy) and the mode in force",
            ["decider", "mode"],
            registry=r,
        )
        self.legacy_unavailable = Counter(
            "swoosh_legacy_unavailable_total",
            "Mutations answered 503 because the legacy system could not be reached",
            registry=r,
        )
        self.divergences = Counter(
            "swoosh_shadow_divergence_total",
            "Mutations where SWOOSH and the legacy system disagreed (decision or state)",
            ["transition"],
            registry=r,
        )
        self.compared = Counter(
            "swoosh_shadow_compared_total",
            "Mutations SWOOSH compared with the legacy system",
            ["transition"],
            registry=r,
        )

    def migration(self, mode: str, version: int) -> None:
        for m in MODES:
            self.migration_mode.labels(mode=m).set(1 if m == mode else 0)
        self.migration_version.set(version)

    def known(self, transition: str | None) -> str:
        return transition if transition in self.chart.transitions else "unknown"

    def exposition(self) -> bytes:
        """The API's metrics and, when it owns its client's runtime, the SDK's (blocking)."""
        own = generate_latest(self.registry)
        if self.sdk_text is None:
            return own
        try:
            sdk = self.sdk_text().encode("utf-8")
        except OSError:
            return own
        return own + sdk

    def region(self, transition: str) -> str:
        t = self.chart.transitions.get(transition)
        return t.spec.epoch if t is not None else "unknown"

    def retry(self, transition: str | None, times: int = 1) -> None:
        known = transition if transition in self.chart.transitions else "unknown"
        self.retries.labels(transition=known).inc(times)

    def responded(self, status: int) -> None:
        self.responses.labels(code=str(status)).inc()

    def answered(self, project_id: str, answer: Accepted | Rejected, started: float) -> None:
        """Count one answer the API returns (duplicates are not counted again)."""
        if isinstance(answer, Rejected):
            if answer.error == "guard_failed" and answer.failing_guard:
                self.guard_fails.labels(guard=answer.failing_guard).inc()
            return
        if answer.duplicate:
            return
        self.transitions.labels(transition=answer.transition).inc()
        self.latency.labels(region=self.region(answer.transition)).observe(max(0.0, time.monotonic() - started))
        if enters_quarantine(self.chart, answer.transition):
            self.quarantines.inc()
