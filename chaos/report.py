"""The chaos report: faults fired, transitions by outcome, invariants checked and violated, recovery times.

Its last line is the one `make chaos` and CI read:
`chaos seed=<s> profile=<p> transitions=<n> faults=<f> violations=<v> lost=<l>`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from swoosh.chaos.callers import Observations
from swoosh.chaos.faults import FaultRecord, ResetMark
from swoosh.chaos.invariants import INVARIANTS, ProjectVerdict
from swoosh.chaos.schedule import PROPOSAL_FAULTS

RECOVERY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


def recovery_times(faults: list[FaultRecord], accepted_at: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per fault kind: seconds from each fault to the next fresh accepted transition of each affected project."""
    out: dict[str, list[float]] = {}
    for f in faults:
        if not f.ok:
            continue
        for project in f.projects:
            later = [t for t in accepted_at.get(project, []) if t >= f.started]
            if later:
                out.setdefault(f.kind, []).append(min(later) - f.started)
    return out


class RecoveryMetrics:
    """`swoosh_recovery_time_seconds{fault=…}` in the runner's own Prometheus registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.histogram = Histogram(
            "swoosh_recovery_time_seconds",
            "time from an injected fault to the next accepted transition of an affected project",
            ["fault"],
            registry=self.registry,
            buckets=RECOVERY_BUCKETS,
        )

    def observe_all(self, times: dict[str, list[float]]) -> None:
        for kind, values in times.items():
            for value in values:
                self.histogram.labels(fault=kind).observe(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


@dataclass
class ChaosReport:
    seed: int
    profile: str
    schedule_digest: str
    scheduled: int
    duration_s: float
    faults: list[FaultRecord]
    resets: list[ResetMark]
    obs: Observations
    verdicts: list[ProjectVerdict]
    recovery: dict[str, list[float]]
    transitions: int  # accepted transitions in the live histories of every project
    finals: dict[str, dict[str, Any]] = field(default_factory=dict)
    drain: dict[str, str] = field(default_factory=dict)

    @property
    def fault_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter(f.kind for f in self.faults if f.ok)
        for kind in PROPOSAL_FAULTS:
            counts[kind] += self.obs.proposal_faults.get(kind, 0)
        return counts

    @property
    def faults_total(self) -> int:
        return sum(self.fault_counts.values())

    @property
    def violations(self) -> int:
        return sum(v.count for v in self.verdicts)

    @property
    def lost(self) -> int:
        return sum(v.lost for v in self.verdicts)

    @property
    def reset_discarded(self) -> int:
        return sum(v.reset_discarded for v in self.verdicts)

    def summary_line(self) -> str:
        return (
            f"chaos seed={self.seed} profile={self.profile} transitions={self.transitions} "
            f"faults={self.faults_total} violations={self.violations} lost={self.lost}"
        )

    def lines(self) -> list[str]:
        o = self.obs
        out = [
            f"== SWOOSH chaos report: seed {self.seed}, profile {self.profile}, {self.duration_s:.0f} s, "
            f"schedule {self.schedule_digest} ({self.scheduled} scheduled events)",
            "",
            "faults fired (kind: fired / failed to inject):",
        ]
        failed = Counter(f.kind for f in self.faults if not f.ok)
        counts = self.fault_counts
        for kind in sorted(set(counts) | set(failed)):
            out.append(
                f"  {kind:<18} {counts.get(kind, 0):>5}" + (f"  ({failed[kind]} not injected)" if failed[kind] else "")
            )
        extra = {k: v for k, v in o.proposal_faults.items() if k not in PROPOSAL_FAULTS}
        if extra:
            out.append("  proposal drops: " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
        out += ["", "transitions (attempted / accepted):"]
        for t in sorted(o.attempts):
            out.append(f"  {t:<30} {o.attempts[t]:>6} / {o.accepted.get(t, 0):>6}")
        out.append(
            f"  total {sum(o.attempts.values())} attempted, {sum(o.accepted.values())} accepted, "
            f"{o.duplicates} duplicate answers, {sum(o.rejected.values())} rejected, {o.resends} deliberate resends"
        )
        out.append("rejections by code: " + (", ".join(f"{k}={v}" for k, v in sorted(o.rejected.items())) or "none"))
        if o.rejected_guard:
            out.append("  guard_failed by guard: " + ", ".join(f"{k}={v}" for k, v in sorted(o.rejected_guard.items())))
        out.append("transport resends: " + (", ".join(f"{k}={v}" for k, v in sorted(o.http.items())) or "none"))
        out += ["", "invariants (checked facts / violations):"]
        for inv in INVARIANTS:
            checked = sum(v.checked.get(inv, 0) for v in self.verdicts)
            bad = sum(len(v.violations.get(inv, [])) for v in self.verdicts)
            out.append(f"  {inv:<18} {checked:>7} / {bad}")
        out.append(f"  answers discarded by a deliberate reset (not lost): {self.reset_discarded}")
        shown = 0
        for v in self.verdicts:
            for inv, msgs in v.violations.items():
                for m in msgs:
                    if shown < 30:
                        out.append(f"  VIOLATION {inv}: {m}")
                    shown += 1
        if shown > 30:
            out.append(f"  … and {shown - 30} more (see report.json)")
        out += ["", "recovery (fault → next accepted transition of each affected project), seconds:"]
        for kind in sorted(self.recovery):
            vals = self.recovery[kind]
            p50, p95 = _pct(vals, 0.5), _pct(vals, 0.95)
            out.append(f"  {kind:<18} n={len(vals):<4} p50={p50:6.2f} p95={p95:6.2f} max={max(vals):6.2f}")
        if self.finals:
            out += ["", "projects at the end:"]
            for p, f in sorted(self.finals.items()):
                out.append(
                    f"  {p:<12} index={f.get('index')} top={f.get('top')} cycles={f.get('cycles')} "
                    f"runs={f.get('runs')} drain={self.drain.get(p, '?')}"
                )
        out += ["", self.summary_line()]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "profile": self.profile,
            "schedule_digest": self.schedule_digest,
            "duration_s": round(self.duration_s, 2),
            "transitions": self.transitions,
            "faults": dict(self.fault_counts),
            "fault_log": [
                {"kind": f.kind, "scheduled_s": f.scheduled_s, "ok": f.ok, "detail": f.detail, "projects": f.projects}
                for f in self.faults
            ],
            "resets": [r.__dict__ for r in self.resets],
            "attempted": dict(self.obs.attempts),
            "accepted": dict(self.obs.accepted),
            "rejected": dict(self.obs.rejected),
            "violations": {v.project_id: v.violations for v in self.verdicts},
            "violations_total": self.violations,
            "lost": self.lost,
            "reset_discarded": self.reset_discarded,
            "recovery_s": self.recovery,
            "finals": self.finals,
            "summary": self.summary_line(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)


__all__ = ["ChaosReport", "RecoveryMetrics", "recovery_times"]
