"""The pure reducer: `(document, transition, proposal fields, inputs) -> next document`.

Behaviour comes from the statechart: each transition's phase change, effects and epoch are read
from the YAML and applied by the small, generic effect operations below. No I/O, no clock, no
randomness: the same arguments always give the same document.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.identities import rotated
from swoosh.workflows.limits import INDEX_VERSIONS_KEPT, MAX_IDENTITIES
from swoosh.workflows.statechart import REGION_MACHINES, STAY, Effect, Statechart, Transition


@dataclass(frozen=True, slots=True)
class Step:
    """The proposal fields a reduction may read (never the signature)."""

    signer: str
    idem_key: str
    hlc: str
    window_id: str | None
    inputs: dict[str, Any]
    grace_ms: int
    initials: dict[str, str]  # each machine's initial state, from the statechart
    limits: bool = False  # the project's state limits (EngineConfig.state_limits, see limits.py)


_SCALARS = frozenset({str, int, bool, float, type(None)})


def clone(value: Any) -> Any:
    """Deep copy of a JSON-like value (faster than copy.deepcopy for plain data).

    Exact type checks first: this runs inside Temporal's workflow sandbox, where builtins.isinstance
    is wrapped and costs far more than `type(...)`.
    """
    t = type(value)
    if t is dict:
        return {k: v if type(v) in _SCALARS else clone(v) for k, v in value.items()}
    if t is list:
        return [v if type(v) in _SCALARS else clone(v) for v in value]
    if t in _SCALARS:
        return value
    if isinstance(value, dict):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clone(v) for v in value]
    return value


def get_path(doc: dict[str, Any], path: str) -> Any:
    cur: Any = doc
    for part in path.split("."):
        cur = cur[part]
    return cur


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for part in parts[:-1]:
        cur = cur[part]
    cur[parts[-1]] = value


_PHASE_PATHS = {"top": "control.top", "boot": "boot.phase", "license": "control.license.phase"}


def phase_path(machine: str) -> str:
    return _PHASE_PATHS.get(machine, f"{machine}.phase")


def current_phase(doc: dict[str, Any], machine: str) -> str | None:
    value = get_path(doc, phase_path(machine))
    return value if isinstance(value, str) else None


def _invalid(reason: str) -> ProposalError:
    return ProposalError("invalid_transition", reason)


def check_source(chart: Statechart, doc: dict[str, Any], t: Transition) -> None:
    """Raise invalid_transition unless `t` may fire from the document's current configuration."""
    spec = t.spec
    top = doc["control"]["top"]
    if spec.machine != "top":
        active = chart.doc.active_in.get(spec.machine, ())
        if top not in active:
            raise _invalid(f"{spec.name} needs the project in {' or '.join(active)}, it is {top}")
    phase = current_phase(doc, spec.machine)
    if phase not in t.sources:
        where = f"{spec.machine} is {phase}" if spec.machine != "top" else f"project is {phase}"
        raise _invalid(f"{spec.name} is not allowed when {where} (allowed from {', '.join(t.sources)})")
    if spec.to == "return":
        assert spec.return_from is not None  # checked when the statechart loaded
        if get_path(doc, spec.return_from) is None:
            raise _invalid(f"{spec.name}: nothing to return to")


def reduce(chart: Statechart, doc: dict[str, Any], t: Transition, step: Step) -> dict[str, Any]:
    """The next document; raise ProposalError('invalid_transition') if the effects cannot apply."""
    check_source(chart, doc, t)
    spec = t.spec
    # Copy-on-write: only the sections this transition can write are deep-copied.
    new: dict[str, Any] = dict(doc)
    for section in sections_written(t):
        new[section] = clone(doc[section])
    pre_top = doc["control"]["top"]
    if spec.to == "return" and spec.return_from:
        target = get_path(doc, spec.return_from)
    else:
        target = pre_top if spec.to == STAY else spec.to
    set_path(new, phase_path(spec.machine), target)
    for effect in spec.effects:
        _EFFECTS[effect.op](new, doc, effect, step, pre_top)
    new["epoch"][spec.epoch] = doc["epoch"][spec.epoch] + 1
    new["hlc_last"] = step.hlc
    meta = new["meta"]
    meta["index"] = doc["meta"]["index"] + 1
    meta["last_signer"] = step.signer
    meta["last_idem_key"] = step.idem_key
    return new


EffectFn = Callable[[dict[str, Any], dict[str, Any], Effect, Step, str], None]

# Sections each special effect writes besides its own `path` (kept beside the effects they describe).
_OP_SECTIONS: dict[str, tuple[str, ...]] = {
    "quarantine": ("policy", "control"),
    "release": ("policy",),
    "pin_index": ("ingestion",),
    "rollback_index": ("ingestion",),
    "elect_council": ("council",),
    "eject_member": ("council",),
    "pin_readiness": ("execution",),
    "record_approvals": ("execution",),
    "next_cycle": ("execution",),
    "start_grace": ("control",),
    "rotate_identities": ("boot", "council"),
}
_WRITES: dict[tuple[int, str], frozenset[str]] = {}


def sections_written(t: Transition) -> frozenset[str]:
    """The top-level sections a transition may modify (its phase, its effects, meta and epoch)."""
    key = (id(t), t.name)
    cached = _WRITES.get(key)
    if cached is None:
        out = {"meta", "epoch", phase_path(t.spec.machine).split(".")[0]}
        for e in t.spec.effects:
            if e.path:
                out.add(e.path.split(".")[0])
            if e.op == "set_phase" and e.machine:
                out.add(phase_path(e.machine).split(".")[0])
            if e.op == "enter_regions":
                out.update(phase_path(m).split(".")[0] for m in e.machines)
            out.update(_OP_SECTIONS.get(e.op, ()))
        cached = _WRITES[key] = frozenset(out)
    return cached


def _set(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    set_path(new, str(e.path), clone(e.value))


def _set_phase(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    set_path(new, phase_path(str(e.machine)), e.value)


def _copy_input(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    set_path(new, str(e.path), clone(s.inputs.get(str(e.input))))


def _copy_field(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    set_path(new, str(e.path), getattr(s, str(e.field)))


def _enter_regions(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    for machine in e.machines:
        set_path(new, phase_path(machine), s.initials[machine])


def _quarantine(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    pol = new["policy"]
    pol["quarantined"] = True
    pol["quarantined_from"] = pre_top
    pol["rationale"] = s.inputs.get("reason")
    pol["quarantine_count"] = old["policy"]["quarantine_count"] + 1
    new["control"]["top"] = "QUARANTINED"


def _release(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    pol = new["policy"]
    pol["quarantined"] = False
    pol["quarantined_from"] = None
    pol["rationale"] = None


def _remember_return(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    set_path(new, str(e.path), pre_top)


def _pin_index(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    ing = new["ingestion"]
    version = s.inputs["version"]
    highest = max((v["version"] for v in ing["versions"]), default=0)
    if version <= highest:
        raise _invalid(f"a new index must be a new version: {version} is not above pinned version {highest}")
    pin = {"content_hash": s.inputs["content_hash"], "version": version}
    ing["pinned"] = pin
    ing["versions"].append(dict(pin))
    if s.limits and len(ing["versions"]) > INDEX_VERSIONS_KEPT:
        del ing["versions"][:-INDEX_VERSIONS_KEPT]  # the newest ones: what a rollback can go back to


def _rollback_index(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    ing = new["ingestion"]
    pinned = ing["pinned"]
    if pinned is None:
        raise _invalid("Ingestion_RollbackIndex: no index version has been pinned yet")
    if old["ingestion"]["phase"] == "READY":
        earlier = [v for v in ing["versions"] if v["version"] < pinned["version"]]
        if not earlier:
            raise _invalid(f"Ingestion_RollbackIndex: no version pinned before version {pinned['version']}")
        ing["pinned"] = dict(earlier[-1])
    # mid re-ingestion: abandon it and return to the version still pinned
    ing["bytes_hash"] = None
    ing["schema_hash"] = None


def _elect_council(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    members = sorted(set(s.inputs["members"]))
    council = new["council"]
    council["members"] = members
    council["members_hash"] = content_hash(members)
    council["quorum_cert"] = {
        "members_hash": council["members_hash"],
        "voters": sorted({v["voter"] for v in s.inputs["votes"]}),
        "window_id": s.window_id,
    }


def _eject_member(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    council = new["council"]
    member = s.inputs["member"]
    if member not in council["members"]:
        raise _invalid(f"Council_Eject: {member} is not an elected member")
    council["members"] = [m for m in council["members"] if m != member]
    council["members_hash"] = content_hash(council["members"])
    council["quorum_cert"] = None
    council["tooling"] = {"status": "unknown", "pins": {}}
    council["ejected"] = sorted({*council["ejected"], member})


def _pin_readiness(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    new["execution"]["readiness"] = dict(s.inputs["region_hashes"])


def _record_approvals(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    new["execution"]["approvals"] = sorted({a["approver"] for a in s.inputs["approvals"]})


def _next_cycle(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    ex = new["execution"]
    ex["cycle"] = old["execution"]["cycle"] + 1
    ex["plan_hash"] = None
    ex["approvals"] = []
    ex["work_evidence"] = None


def _start_grace(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    new["control"]["license"]["grace_deadline_ms"] = HLC.parse(s.hlc).wall_ms + s.grace_ms


def _rotate_identities(new: dict[str, Any], old: dict[str, Any], e: Effect, s: Step, pre_top: str) -> None:
    add, remove = list(s.inputs.get("add") or []), list(s.inputs.get("remove") or [])
    cap = MAX_IDENTITIES if s.limits else None
    new["boot"]["identities"] = identities = rotated(list(old["boot"]["identities"]), add, remove, cap)
    if s.limits:  # an identity rotated out needs no ejection to stay out; the list stays bounded
        ids = {i["id"] for i in identities}
        ejected = old["council"]["ejected"]
        if any(e not in ids for e in ejected):
            new["council"] = {**old["council"], "ejected": [e for e in ejected if e in ids]}


_EFFECTS: dict[str, EffectFn] = {
    "set": _set,
    "set_phase": _set_phase,
    "copy_input": _copy_input,
    "copy_field": _copy_field,
    "enter_regions": _enter_regions,
    "quarantine": _quarantine,
    "release": _release,
    "remember_return": _remember_return,
    "pin_index": _pin_index,
    "rollback_index": _rollback_index,
    "elect_council": _elect_council,
    "eject_member": _eject_member,
    "pin_readiness": _pin_readiness,
    "record_approvals": _record_approvals,
    "next_cycle": _next_cycle,
    "start_grace": _start_grace,
    "rotate_identities": _rotate_identities,
}

assert set(_EFFECTS) == set(Effect.model_fields["op"].annotation.__args__)  # type: ignore[union-attr]
__all__ = ["REGION_MACHINES", "Step", "check_source", "clone", "current_phase", "reduce"]
