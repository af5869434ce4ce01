"""The chaos invariant checker: pure functions over what callers received, histories and the sink.

`check_project(evidence)` returns the violations of every invariant for one project, plus the
counts of lost and reset-discarded answers. It never talks to Temporal: `chaos.evidence` gathers
the `ProjectEvidence` (so tests can plant violations in recorded data and see them caught).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from swoosh.chaos.callers import ReceivedAnswer
from swoosh.chaos.faults import ResetMark
from swoosh.guards.council import members_hash
from swoosh.guards.readiness import region_hashes
from swoosh.workflows.hlc import HLC, order_key
from swoosh.workflows.statechart import SYSTEM_SIGNER, default_statechart

CHART = default_statechart()
INVARIANTS = (
    "nothing_lost",  # every accepted answer a caller received is in the history (or was discarded by a reset)
    "decision_records",  # every accepted transition in the history has its decision record in the sink
    "idem_once",  # no idem_key applied twice
    "hlc_monotonic",  # HLC strictly increasing over accepted transitions
    "epoch_once",  # each transition advances exactly its region's epoch, exactly once
    "execution_entry",  # EXECUTION entered only with all regions READY and matching hashes
    "quorum_cert",  # the quorum certificate equals the elected set's hash
    "windows",  # REVIEW/REVERB (every window-gated transition) only inside open windows
    "quarantine_sticky",  # QUARANTINED left only by Policy_Release / Policy_ConfirmedBlock
    "dr_chain",  # decision-record chain verifies against the histories (swoosh.workflows.replay.audit)
    "replay",  # Replayer + fold over every history reproduce the live hash
    "continuous",  # what callers checked on every answer while running
    "running",  # every project's workflow still runs at the end: no fault (a fact provider down) failed it
)
EXECUTION_ENTRIES = ("Execution_AllReady", "Recovery_QuorumRestored")
QUARANTINE_EXITS = ("Policy_Release", "Policy_ConfirmedBlock")


@dataclass
class Step:
    """One accepted transition of the live history: its decision record, the documents around it, its inputs."""

    record: dict[str, Any]
    pre: dict[str, Any]
    post: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProjectEvidence:
    project_id: str
    steps: list[Step] = field(default_factory=list)
    history_records: dict[int, dict[str, Any]] = field(default_factory=dict)  # index -> record, live runs
    sink_records: list[dict[str, Any]] = field(default_factory=list)
    answers: list[ReceivedAnswer] = field(default_factory=list)
    resets: list[ResetMark] = field(default_factory=list)
    walk_problems: list[str] = field(default_factory=list)
    audit_problems: list[str] = field(default_factory=list)
    replay_problems: list[str] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)
    status: str = "RUNNING"  # the workflow's status at the end of the run


@dataclass
class ProjectVerdict:
    project_id: str
    violations: dict[str, list[str]] = field(default_factory=dict)
    checked: Counter[str] = field(default_factory=Counter)  # how many facts each invariant looked at
    lost: int = 0
    reset_discarded: int = 0
    duplicated: int = 0  # decision records the sink holds more than once for one index

    def add(self, invariant: str, message: str) -> None:
        self.violations.setdefault(invariant, []).append(f"{self.project_id}: {message}")

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.violations.values())


# ---------------------------------------------------------------------- the invariants
def check_answers(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    by_key = {r["idem_key"]: r for r in ev.history_records.values() if r.get("signer") != SYSTEM_SIGNER}
    seen: set[tuple[str, int, str]] = set()
    for a in ev.answers:
        key = (a.idem_key, a.index, a.state_post_hash)
        if key in seen:
            continue
        seen.add(key)
        v.checked["nothing_lost"] += 1
        rec = by_key.get(a.idem_key)
        if rec is not None and rec["index"] == a.index and rec["state_post_hash"] == a.state_post_hash:
            continue
        if any(a.at <= r.done and a.index > r.kept_index for r in ev.resets):
            v.reset_discarded += 1
            continue
        v.lost += 1
        where = "is not in the history" if rec is None else f"is in the history at index {rec['index']}"
        v.add("nothing_lost", f"accepted answer {a.transition} {a.idem_key} (index {a.index}) {where}")


def check_records(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    counts = Counter(int(r["index"]) for r in ev.sink_records)
    for index, n in sorted(counts.items()):
        if n > 1:
            v.duplicated += n - 1
            v.add("decision_records", f"index {index}: the sink holds {n} records")
    sink = {int(r["index"]): r for r in ev.sink_records}
    for index, rec in sorted(ev.history_records.items()):
        v.checked["decision_records"] += 1
        have = sink.get(index)
        if have is None:
            v.add("decision_records", f"index {index} ({rec['transition']}) has no decision record in the sink")
        elif have.get("dr_hash") != rec.get("dr_hash"):
            v.add("decision_records", f"index {index}: the sink's record differs from the history's")


def check_idem(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    keys = Counter(s.record["idem_key"] for s in ev.steps if s.record["signer"] != SYSTEM_SIGNER)
    keys.update(f"sink:{r['idem_key']}" for r in ev.sink_records if r.get("signer") != SYSTEM_SIGNER)
    v.checked["idem_once"] += len(keys)
    for key, n in keys.items():
        if n > 1:
            v.add("idem_once", f"idem_key {key} applied {n} times")


def check_hlc(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    last: tuple[int, int, str, str] | None = None
    for s in ev.steps:
        r = s.record
        v.checked["hlc_monotonic"] += 1
        key = order_key(HLC.parse(r["hlc"]), r["signer"], r["idem_key"])
        if last is not None and key <= last:
            v.add("hlc_monotonic", f"index {r['index']} ({r['transition']}): hlc {r['hlc']} is not after the previous")
        last = key


def check_epochs(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    for s in ev.steps:
        r = s.record
        v.checked["epoch_once"] += 1
        spec = CHART.transitions[r["transition"]].spec
        regions = set(s.pre["epoch"]) | set(s.post["epoch"])
        diff = {k: s.post["epoch"].get(k, 0) - s.pre["epoch"].get(k, 0) for k in regions}
        moved = {k: d for k, d in diff.items() if d != 0}
        if moved != {spec.epoch: 1}:
            v.add(
                "epoch_once", f"index {r['index']} ({r['transition']}): epochs moved {moved}, expected {spec.epoch} +1"
            )
        if s.post["meta"]["index"] != s.pre["meta"]["index"] + 1:
            v.add("epoch_once", f"index {r['index']}: document index did not advance by one")


def check_execution_entry(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    for s in ev.steps:
        r = s.record
        if s.post["control"]["top"] != "EXECUTION" or s.pre["control"]["top"] == "EXECUTION":
            continue
        v.checked["execution_entry"] += 1
        if r["transition"] not in EXECUTION_ENTRIES:
            if s.pre["control"]["top"] in ("PAUSED", "QUARANTINED"):
                continue  # a resume/release returning to where it was
            v.add("execution_entry", f"index {r['index']}: EXECUTION entered by {r['transition']}")
            continue
        not_ready = [g for g in ("ingestion", "council", "environment") if s.pre[g]["phase"] != "READY"]
        if not_ready:
            v.add("execution_entry", f"index {r['index']}: EXECUTION entered with {not_ready} not READY")
        if s.post["execution"]["readiness"] != region_hashes(s.pre):
            v.add("execution_entry", f"index {r['index']}: pinned region hashes differ from the regions entered with")


def check_quorum(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    for s in ev.steps:
        council = s.post["council"]
        qc = council["quorum_cert"]
        if qc is None:
            if s.record["transition"] in ("Council_QuorumCert", "Recovery_QuorumRestored"):
                v.add("quorum_cert", f"index {s.record['index']}: {s.record['transition']} left no certificate")
            continue
        v.checked["quorum_cert"] += 1
        elected = members_hash(council["members"])
        if qc["members_hash"] != council["members_hash"] or qc["members_hash"] != elected:
            v.add("quorum_cert", f"index {s.record['index']}: certificate {qc['members_hash']} ≠ elected set {elected}")


def check_windows(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    for s in ev.steps:
        r = s.record
        spec = CHART.transitions[r["transition"]].spec
        if spec.window is None:
            continue
        v.checked["windows"] += 1
        ok = [g for g in r["guards"] if g["guard"] == "window" and g["ok"]]
        if not ok or not r.get("window_id"):
            v.add("windows", f"index {r['index']} ({r['transition']}): applied without an open {spec.window} window")


def check_quarantine(ev: ProjectEvidence, v: ProjectVerdict) -> None:
    for s in ev.steps:
        r = s.record
        if s.pre["control"]["top"] == "QUARANTINED":
            v.checked["quarantine_sticky"] += 1
            if r["transition"] not in QUARANTINE_EXITS:
                v.add("quarantine_sticky", f"index {r['index']}: {r['transition']} applied while QUARANTINED")
        if r["transition"] == "Policy_Quarantine" and s.post["control"]["top"] != "QUARANTINED":
            v.add("quarantine_sticky", f"index {r['index']}: Policy_Quarantine did not quarantine")


def check_project(ev: ProjectEvidence) -> ProjectVerdict:
    """Every invariant over one project's evidence."""
    v = ProjectVerdict(ev.project_id)
    check_answers(ev, v)
    check_records(ev, v)
    check_idem(ev, v)
    check_hlc(ev, v)
    check_epochs(ev, v)
    check_execution_entry(ev, v)
    check_quorum(ev, v)
    check_windows(ev, v)
    check_quarantine(ev, v)
    v.checked["dr_chain"] += len(ev.sink_records)
    for p in ev.audit_problems:
        v.add("dr_chain", p)
    v.checked["replay"] += 1
    for p in ev.walk_problems + ev.replay_problems:
        v.add("replay", p)
    v.checked["continuous"] += len(ev.answers)
    for p in ev.continuous:
        v.add("continuous", p)
    v.checked["running"] += 1
    if ev.status != "RUNNING":
        v.add("running", f"the project's workflow is {ev.status}, not RUNNING")
    return v


__all__ = ["INVARIANTS", "ProjectEvidence", "ProjectVerdict", "Step", "check_project"]
