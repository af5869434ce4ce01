"""The brief's metrics as the API observes them, on a registry of the app's own.

The canonical `swoosh_transition_total`, `swoosh_guard_fail_total` and `swoosh_quarantine_total`
are counted by the worker through `workflow.metric_meter()` (replay-safe, and they also see Signal
and system transitions). The API counts the answers it returns under `swoosh_api_*` names, so a
Prometheus scraping both never counts a transition twice. Latency, retries, recovery time and WAL
lag are observed here under the brief's names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST as PROMETHEUS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.statechart import Statechart, default_statechart

__all__ = ["METRIC_NAMES", "PROMETHEUS_CONTENT_TYPE", "ApiMetrics"]

METRIC_NAMES = (
    "swoosh_api_transition_total",
    "swoosh_api_guard_fail_total",
    "swoosh_state_advance_latency_seconds",
    "swoosh_retry_count",
    "swoosh_api_quarantine_total",
    "swoosh_recovery_time_seconds",
    "swoosh_wal_lag_records",
)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RECOVERY_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0)
SPECIAL_STATES = ("RECOVERY", "QUARANTINED")


@dataclass
class ApiMetrics:
    """Prometheus metrics of one API app (its own registry, so several apps can share a process)."""

    chart: Statechart = field(default_factory=default_statechart)
    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    _entered: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        r = self.registry
        self.transitions = Counter(
            "swoosh_api_transition_total", "Accepted transitions answered by the API", ["transition"], registry=r
        )
        self.guard_fails = Counter(
            "swoosh_api_guard_fail_total", "Guard rejections answered by the API", ["guard"], registry=r
        )
        self.latency = Histogram(
            "swoosh_state_advance_latency_seconds",
            "Request to accepted answer, by the region (epoch) the transition advances",
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
        self.recovery = Histogram(
            "swoosh_recovery_time_seconds",
            "Time from entering RECOVERY or QUARANTINED to leaving it, as observed from answers",
            ["state"],
            buckets=RECOVERY_BUCKETS,
            registry=r,
        )
        self.wal_lag = Gauge(
            "swoosh_wal_lag_records",
            "Accepted transitions since the project's last snapshot",
            ["project_id"],
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def region(self, transition: str) -> str:
        t = self.chart.transitions.get(transition)
        return t.spec.epoch if t is not None else "unknown"

    def retry(self, transition: str | None, times: int = 1) -> None:
        known = transition if transition in self.chart.transitions else "unknown"
        self.retries.labels(transition=known).inc(times)

    def answered(self, project_id: str, answer: Accepted | Rejected, started: float) -> None:
        """Count one answer the API returns (duplicates are not counted again)."""
        if isinstance(answer, Rejected):
            if answer.error == "guard_failed" and answer.failing_guard:
                self.guard_fails.labels(guard=answer.failing_guard).inc()
                if answer.failing_guard == "policy":
                    # A policy breach quarantines the project by a system transition (counted by the worker).
                    self._enter(project_id, "QUARANTINED")
            return
        if answer.duplicate:
            return
        now = time.monotonic()
        self.transitions.labels(transition=answer.transition).inc()
        self.latency.labels(region=self.region(answer.transition)).observe(max(0.0, now - started))
        t = self.chart.transitions.get(answer.transition)
        if t is None:
            return
        spec = t.spec
        quarantines = spec.to == "QUARANTINED" or any(e.op == "quarantine" for e in spec.effects)
        if quarantines:
            self.quarantines.inc()
        if spec.machine == "top" and isinstance(spec.from_, tuple):
            # Only a transition that names RECOVERY/QUARANTINED as its source leaves it (pause does not).
            for state in SPECIAL_STATES:
                if state in spec.from_ and spec.to != state:
                    entered = self._entered.pop((project_id, state), None)
                    if entered is not None:
                        self.recovery.labels(state=state).observe(max(0.0, now - entered))
        if quarantines:
            self._enter(project_id, "QUARANTINED")
        elif spec.machine == "top" and spec.to == "RECOVERY":
            self._enter(project_id, "RECOVERY")

    def _enter(self, project_id: str, state: str) -> None:
        self._entered.setdefault((project_id, state), time.monotonic())
        if len(self._entered) > 100_000:  # bound memory against project-id churn
            self._entered.pop(next(iter(self._entered)))

    def health(self, project_id: str, wal_lag: int) -> None:
        self.wal_lag.labels(project_id=project_id).set(wal_lag)
