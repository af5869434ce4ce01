"""Seeded fault schedules: the same seed and profile always give the same list of fault events.

A schedule is derived from `random.Random(f"{seed}:{profile}:schedule")` only, never from the clock,
so a run is reproducible from its seed: `schedule_digest()` fingerprints it for the report. Proposal
faults (duplicate, reorder, drop) are drawn by each caller from its own `Random(f"{seed}:{project}")`,
so the n-th proposal of a project is treated the same way in every run with that seed.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

# Fault kinds the schedule can hold (the report counts each of them).
PROCESS_FAULTS = ("worker_kill", "api_restart", "temporal_restart")
WORKFLOW_FAULTS = ("snapshot", "reset")
ECOSYSTEM_FAULTS = (
    "license_latency",
    "license_deny",
    "license_throttle",
    "mcp_flap",
    "capacity_churn",
    "provider_hang",
)
CALLER_FAULTS = ("clock_skew",)
SCHEDULED_KINDS = PROCESS_FAULTS + WORKFLOW_FAULTS + ECOSYSTEM_FAULTS + CALLER_FAULTS
PROPOSAL_FAULTS = ("duplicate", "reorder", "drop")
ALL_KINDS = SCHEDULED_KINDS + PROPOSAL_FAULTS


@dataclass(frozen=True)
class Profile:
    """How big a run is and how often each fault fires (mean seconds between events of a kind)."""

    name: str
    duration_s: float
    projects: int
    workers: int
    duplicate_rate: float = 0.05
    reorder_rate: float = 0.03
    drop_rate: float = 0.05
    mean_interval_s: dict[str, float] = field(default_factory=dict)
    tempo_bpm: int = 80
    beats_per_bar: int = 12
    warmup_s: float = 10.0
    cooldown_s: float = 12.0
    drain_timeout_s: float = 150.0
    snapshot_every: int = 40

    def __post_init__(self) -> None:
        for name, rate in (
            ("duplicate", self.duplicate_rate),
            ("reorder", self.reorder_rate),
            ("drop", self.drop_rate),
        ):
            if not 0.0 <= rate <= 0.10:
                raise ValueError(f"{name} rate {rate} outside 0-10%")
        unknown = set(self.mean_interval_s) - set(SCHEDULED_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")


PROFILES: dict[str, Profile] = {
    # `make chaos`: every fault kind fires at least once in about three minutes on two cores.
    "quick": Profile(
        name="quick",
        duration_s=150.0,
        projects=4,
        workers=2,
        mean_interval_s={
            "worker_kill": 25.0,
            "api_restart": 60.0,
            "temporal_restart": 70.0,
            "snapshot": 20.0,
            "reset": 45.0,
            "license_latency": 60.0,
            "license_deny": 70.0,
            "license_throttle": 80.0,
            "mcp_flap": 50.0,
            "capacity_churn": 45.0,
            "provider_hang": 50.0,
            "clock_skew": 30.0,
        },
    ),
    # The runbook's profile (docs/chaos.md): more projects, more workers, denser faults, ~25 minutes.
    "full": Profile(
        name="full",
        duration_s=1380.0,
        projects=12,
        workers=3,
        duplicate_rate=0.08,
        reorder_rate=0.05,
        drop_rate=0.08,
        mean_interval_s={
            "worker_kill": 20.0,
            "api_restart": 60.0,
            "temporal_restart": 90.0,
            "snapshot": 15.0,
            "reset": 40.0,
            "license_latency": 60.0,
            "license_deny": 75.0,
            "license_throttle": 90.0,
            "mcp_flap": 45.0,
            "capacity_churn": 40.0,
            "provider_hang": 80.0,
            "clock_skew": 25.0,
        },
        drain_timeout_s=240.0,
    ),
    # The test suite's end-to-end smoke: two projects, about a minute, the cheap faults only.
    "smoke": Profile(
        name="smoke",
        duration_s=45.0,
        projects=2,
        workers=1,
        mean_interval_s={"worker_kill": 20.0, "snapshot": 12.0, "reset": 25.0, "clock_skew": 20.0},
        warmup_s=8.0,
        cooldown_s=8.0,
        drain_timeout_s=90.0,
    ),
}


@dataclass(frozen=True)
class FaultEvent:
    """One scheduled fault: when (seconds after the run starts), what, on what, for how long."""

    at_s: float
    kind: str
    target: int | None = None  # worker index or project index, depending on the kind
    duration_s: float = 0.0
    params: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    def describe(self) -> str:
        target = "" if self.target is None else f" target={self.target}"
        extra = "".join(f" {k}={v}" for k, v in self.params)
        span = f" for {self.duration_s:.1f}s" if self.duration_s else ""
        return f"t+{self.at_s:7.2f}s {self.kind}{target}{extra}{span}"


def _params(kind: str, rng: random.Random) -> tuple[float, tuple[tuple[str, Any], ...]]:
    """Duration and parameters of one event of `kind`, drawn from `rng` in a fixed order."""
    if kind == "worker_kill":
        return 0.0, (("down_s", round(rng.uniform(0.2, 2.5), 2)),)
    if kind == "temporal_restart":
        return 0.0, (("kill", rng.random() < 0.5), ("down_s", round(rng.uniform(0.5, 3.0), 2)))
    if kind == "api_restart":
        return 0.0, (("kill", rng.random() < 0.5),)
    if kind == "reset":
        return 0.0, (("back", rng.randint(1, 6)),)
    if kind == "license_latency":
        return round(rng.uniform(4.0, 10.0), 2), (("latency_ms", rng.choice((300, 800, 1500, 3000))),)
    if kind == "license_deny":
        return round(rng.uniform(3.0, 8.0), 2), ()
    if kind == "license_throttle":
        return round(rng.uniform(4.0, 10.0), 2), ()
    if kind == "mcp_flap":
        return round(rng.uniform(5.0, 12.0), 2), (("flap_every", rng.randint(1, 3)), ("tool_churn", rng.random() < 0.3))
    if kind == "capacity_churn":
        return round(rng.uniform(5.0, 12.0), 2), (("pressure", rng.choice((40, 70, 95))),)
    if kind == "provider_hang":
        # Each BACKBEAT request answered 15 s late: far longer than the guard activity's three attempts
        # (chaos_env: 2.5 s each), so a decision that meets a fresh request fails after all of them.
        return round(rng.uniform(8.0, 12.0), 2), (("latency_ms", 15_000),)
    if kind == "clock_skew":
        # Mostly within the workflow's max offset (60 s); sometimes beyond it (hlc_too_far_ahead expected).
        skew = rng.choice((-120_000, -20_000, -3_000, 2_000, 15_000, 40_000, 90_000))
        return round(rng.uniform(4.0, 12.0), 2), (("skew_ms", skew),)
    return 0.0, ()


def build_schedule(seed: int, profile: Profile) -> list[FaultEvent]:
    """The run's fault events, sorted by time; a pure function of (seed, profile)."""
    rng = random.Random(f"{seed}:{profile.name}:schedule")
    start, end = profile.warmup_s, max(profile.warmup_s, profile.duration_s - profile.cooldown_s)
    events: list[FaultEvent] = []
    for kind in SCHEDULED_KINDS:  # fixed order: every kind draws from the one generator deterministically
        mean = profile.mean_interval_s.get(kind)
        if not mean:
            continue
        t = start + rng.uniform(0.0, mean)
        while t < end:
            target: int | None = None
            if kind == "worker_kill":
                target = rng.randrange(max(1, profile.workers))
            elif kind in ("snapshot", "reset", "clock_skew", "capacity_churn"):
                target = rng.randrange(profile.projects)
            duration, params = _params(kind, rng)
            events.append(FaultEvent(round(t, 3), kind, target, duration, params))
            t += rng.expovariate(1.0 / mean)
    events.sort(key=lambda e: (e.at_s, e.kind, e.target if e.target is not None else -1))
    return events


def schedule_digest(events: list[FaultEvent]) -> str:
    """A short fingerprint of a schedule: equal digests, equal schedules."""
    data = json.dumps([asdict(e) for e in events], sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


class ProposalFaults:
    """A caller's per-proposal fault draws (duplicate, reorder, drop) from its own seeded generator."""

    def __init__(self, seed: int, project_id: str, profile: Profile) -> None:
        self.rng = random.Random(f"{seed}:{project_id}:proposals")
        self.profile = profile

    def draw(self) -> str | None:
        """None (send normally) or one of PROPOSAL_FAULTS for the next proposal."""
        x = self.rng.random()
        p = self.profile
        if x < p.duplicate_rate:
            return "duplicate"
        if x < p.duplicate_rate + p.reorder_rate:
            return "reorder"
        if x < p.duplicate_rate + p.reorder_rate + p.drop_rate:
            return "drop"
        return None


__all__ = [
    "ALL_KINDS",
    "PROFILES",
    "PROPOSAL_FAULTS",
    "SCHEDULED_KINDS",
    "FaultEvent",
    "Profile",
    "ProposalFaults",
    "build_schedule",
    "schedule_digest",
]
