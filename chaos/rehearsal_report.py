"""What a migration rehearsal's callers were told, and the checks of it against SWOOSH and the legacy system.

Every final answer a caller got is a `Final`; after the run, `check` reads SWOOSH's decision records
and divergences through the API and the stand-in's applied and injection logs, and counts:

- lost: an accepted mutation (a 202 a caller got) missing from SWOOSH's decision records;
- twice: a key in SWOOSH's records or the stand-in's applied log more than once, or a key SWOOSH
  decided in the stand-in's log, or a resend after a switch that was applied anew;
- injected: every disagreement the stand-in injected must be a divergence of that same mutation in
  the project's ledger (reported before the caller got the answer); a divergence nothing injected is
  a false one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from swoosh.chaos.simulator import SimHandle


@dataclass
class Final:
    """The final answer a caller got for one mutation (one idempotency key)."""

    project_id: str
    transition: str
    idem_key: str
    status: int
    decided_by: str
    duplicate: bool
    phase: int


@dataclass
class RehearsalReport:
    """What a rehearsal measured: per phase, every final answer, and what `check` found."""

    phases: list[dict[str, Any]] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    accepted: int = 0
    by_decider: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    refusals_seen: int = 0  # legacy refusals the callers got
    reported_before_next: int = 0  # of them, already divergences when the caller looked, before its next send
    resends: int = 0
    lost: list[str] = field(default_factory=list)
    twice: list[str] = field(default_factory=list)
    injected: int = 0
    reported: int = 0
    missed: list[str] = field(default_factory=list)
    false_divergences: list[str] = field(default_factory=list)
    probes: int = 0
    probes_applied_again: list[str] = field(default_factory=list)
    caller_failures: list[str] = field(default_factory=list)
    swoosh_records: int = 0
    legacy_applied: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.twice or self.missed or self.false_divergences)

    def summary_line(self) -> str:
        return (
            f"rehearsal phases={len(self.phases)} accepted={self.accepted} lost={len(self.lost)} "
            f"twice={len(self.twice)} injected={self.injected} reported={self.reported} "
            f"false={len(self.false_divergences)} probes={self.probes} seconds={self.seconds:.1f}"
        )

    def lines(self) -> list[str]:
        out = []
        for p in self.phases:
            deciders = ", ".join(f"{k} {v}" for k, v in sorted(p["by_decider"].items())) or "-"
            out.append(f"{p['phase']:<24} {p['seconds']:5.1f} s  accepted {p['accepted']:4d}  ({deciders})")
        out.append(
            f"SWOOSH records {self.swoosh_records}, legacy applied {self.legacy_applied}, "
            f"refused-and-resent {self.refused}, transport resends {self.resends}, legacy refusals reported "
            f"before the caller's next send {self.reported_before_next}/{self.refusals_seen}"
        )
        for name, items in (
            ("lost", self.lost),
            ("applied twice", self.twice),
            ("missed divergences", self.missed),
            ("false divergences", self.false_divergences),
            ("resends applied again", self.probes_applied_again),
            ("caller failures", self.caller_failures),
        ):
            for item in items[:20]:
                out.append(f"{name}: {item}")
        out.append(self.summary_line())
        return out

    def as_json(self) -> dict[str, Any]:
        """What `report.json` holds."""
        r = self
        return {
            "ok": r.ok,
            "phases": r.phases,
            "accepted": r.accepted,
            "by_decider": r.by_decider,
            "lost": r.lost,
            "twice": r.twice,
            "injected": r.injected,
            "reported": r.reported,
            "missed": r.missed,
            "false_divergences": r.false_divergences,
            "probes": r.probes,
            "probes_applied_again": r.probes_applied_again,
            "legacy_refusals_seen": r.refusals_seen,
            "legacy_refusals_reported_before_next_send": r.reported_before_next,
            "caller_failures": r.caller_failures,
            "swoosh_records": r.swoosh_records,
            "legacy_applied": r.legacy_applied,
            "seconds": round(r.seconds, 2),
        }


async def check(r: RehearsalReport, http: httpx.AsyncClient, sim: SimHandle, headers: dict[str, str]) -> None:
    """Compare what the callers were told with SWOOSH's records, its divergences and the stand-in's logs."""
    accepted = [f for f in r.finals if f.status == 202]
    r.accepted = len({(f.project_id, f.idem_key) for f in accepted if not f.duplicate})
    r.by_decider = dict(Counter(f.decided_by for f in accepted if not f.duplicate))
    projects = sorted({f.project_id for f in r.finals})
    records: Counter[tuple[str, str]] = Counter()
    divergences: dict[tuple[str, str], list[str]] = {}
    for project in projects:
        after = 0
        while True:
            resp = await http.get(
                f"/v1/projects/{project}/decisions",
                params={"after_index": after, "limit": 1000},
                headers=headers,
            )
            if resp.status_code != 200:
                raise RuntimeError(f"decisions of {project} after {after}: HTTP {resp.status_code} {resp.text[:200]}")
            page = resp.json()
            for rec in page.get("records", []):
                records[(project, rec["idem_key"])] += 1
            if page.get("next_after_index", after) == after or not page.get("records"):
                break
            after = page["next_after_index"]
        shadow = (await http.get(f"/v1/projects/{project}/shadow", params={"limit": 200}, headers=headers)).json()
        for d in shadow.get("divergences", []):
            divergences.setdefault((project, d["idem_key"]), []).append(d["kind"])
    r.swoosh_records = sum(records.values())
    applied = await sim.legacy_log("applied")
    legacy = Counter((a["project_id"], a["idem_key"]) for a in applied if a["project_id"] in projects)
    r.legacy_applied = sum(legacy.values())
    for f in accepted:
        if records[(f.project_id, f.idem_key)] == 0:
            r.lost.append(f"{f.project_id} {f.transition} {f.idem_key} (decided by {f.decided_by}, phase {f.phase})")
    r.lost = sorted(set(r.lost))
    r.twice += [f"SWOOSH applied {k} {n} times" for k, n in records.items() if n > 1]
    r.twice += [f"the legacy system applied {k} {n} times" for k, n in legacy.items() if n > 1]
    swoosh_keys = {(f.project_id, f.idem_key) for f in accepted if f.decided_by == "swoosh"}
    r.twice += [f"SWOOSH decided {k} and the legacy system applied it too" for k in swoosh_keys if legacy[k]]
    r.twice += [f"a resend after a switch was applied again: {p}" for p in r.probes_applied_again]
    injections = [i for i in await sim.legacy_log("injections") if i["project_id"] in projects]
    expected = {"reject": "decision", "state": "state"}
    r.injected = len(injections)
    injected_keys = set()
    for inj in injections:
        key = (inj["project_id"], inj["idem_key"])
        injected_keys.add(key)
        if expected[inj["kind"]] in divergences.get(key, []):
            r.reported += 1
        else:
            r.missed.append(f"{inj['kind']} on {inj['transition']} {key}: reported as {divergences.get(key, [])}")
    for key, kinds in divergences.items():
        if key not in injected_keys:
            r.false_divergences.append(f"{key}: {kinds}")
