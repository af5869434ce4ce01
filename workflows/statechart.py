"""Load, validate and describe the statechart YAML: schema first, then the model, then its meaning.

The statechart is the single source of truth. The reducer reads each transition's phase change,
effects, epoch and guards from here, so behaviour cannot drift from the document.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.errors import StatechartError

STATECHART_PATH = Path(__file__).with_name("statechart.yaml")

GuardName = Literal["license", "window", "quorum", "mcp", "policy", "approvals", "readiness"]
WindowClass = Literal["plan", "work", "review", "reverb"]
InputType = Literal[
    "text", "text_list", "hash", "count", "signer", "signer_list", "pins", "region_hashes", "vote_list", "approval_list"
]
Role = Literal["operator", "boot", "ingestion", "council", "tooling", "environment", "execution", "policy", "system"]
EffectOp = Literal[
    "set",
    "set_phase",
    "copy_input",
    "copy_field",
    "enter_regions",
    "quarantine",
    "release",
    "remember_return",
    "pin_index",
    "rollback_index",
    "elect_council",
    "eject_member",
    "pin_readiness",
    "record_approvals",
    "next_cycle",
    "start_grace",
]
SECTIONS = (
    "meta",
    "boot",
    "ingestion",
    "council",
    "environment",
    "execution",
    "control",
    "policy",
    "epoch",
    "hlc_last",
)
REGION_MACHINES = ("ingestion", "council", "environment")
SYSTEM_SIGNER = "swoosh:system"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopStateSpec(_Frozen):
    parent: str | None = None
    regions: tuple[str, ...] = ()
    returns: bool = False
    sticky: bool = False
    final: bool = False


class MachineSpec(_Frozen):
    initial: str
    states: tuple[str, ...] | dict[str, TopStateSpec]
    ready: str | None = None

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(self.states) if isinstance(self.states, dict) else self.states


class InputField(_Frozen):
    type: InputType
    required: bool = True
    min_items: int | None = None
    minimum: int | None = None


class Effect(_Frozen):
    op: EffectOp
    path: str | None = None
    value: Any = None
    input: str | None = None
    field: str | None = None
    machine: str | None = None
    machines: tuple[str, ...] = ()


class TransitionSpec(_Frozen):
    name: str = Field(pattern=r"^[A-Z][A-Za-z]+_[A-Z][A-Za-z]+$")
    machine: str
    from_: tuple[str, ...] | Literal["live", "live_or_paused"] = Field(alias="from")
    to: str
    return_from: str | None = None
    guards: tuple[GuardName, ...] = ()
    window: WindowClass | None = None
    roles: tuple[Role, ...]
    epoch: str
    inputs: dict[str, InputField] = Field(default_factory=dict)
    effects: tuple[Effect, ...] = ()
    compensation: bool = False
    system: bool = False
    snapshot: bool = False

    @field_validator("roles")
    @classmethod
    def _roles_not_empty(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        if not roles:
            raise ValueError("at least one role must be allowed")
        return roles


class StatechartDoc(_Frozen):
    machine: str
    version: int
    machines: dict[str, MachineSpec]
    active_in: dict[str, tuple[str, ...]]
    live_states: tuple[str, ...]
    transitions: tuple[TransitionSpec, ...]


class Transition(_Frozen):
    """A transition with its sources resolved to concrete state names."""

    spec: TransitionSpec
    sources: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.spec.name


class Statechart:
    """The validated statechart: machines, transitions by name, and its content hash."""

    def __init__(self, doc: StatechartDoc) -> None:
        self.doc = doc
        self.machines = doc.machines
        self.top = doc.machines["top"]
        self.transitions: dict[str, Transition] = {}
        for spec in doc.transitions:
            self.transitions[spec.name] = Transition(spec=spec, sources=self._resolve_sources(spec))
        self.schema_hash = content_hash(doc.model_dump(mode="json", by_alias=True))

    def _resolve_sources(self, spec: TransitionSpec) -> tuple[str, ...]:
        if spec.from_ == "live":
            return self.doc.live_states
        if spec.from_ == "live_or_paused":
            return (*self.doc.live_states, "PAUSED")
        return spec.from_

    def top_state(self, name: str) -> TopStateSpec:
        states = self.top.states
        assert isinstance(states, dict)  # checked by _validate_meaning
        return states[name]

    @property
    def contract_transitions(self) -> list[Transition]:
        return [t for t in self.transitions.values() if not t.spec.system]

    def catalogue(self) -> list[dict[str, Any]]:
        """One row per transition, for `swoosh statechart check` and the docs."""
        rows = []
        for t in self.transitions.values():
            s = t.spec
            rows.append(
                {
                    "transition": s.name,
                    "machine": s.machine,
                    "from": list(t.sources),
                    "to": s.to if s.to != "return" else f"<{s.return_from}>",
                    "guards": list(s.guards),
                    "window": s.window,
                    "roles": list(s.roles),
                    "epoch": s.epoch,
                    "inputs": {k: v.type + ("" if v.required else "?") for k, v in s.inputs.items()},
                    "system": s.system,
                    "compensation": s.compensation,
                }
            )
        return rows


def _validate_meaning(doc: StatechartDoc) -> list[str]:
    problems: list[str] = []
    machines = doc.machines
    for required in ("top", "boot", *REGION_MACHINES, "execution", "license"):
        if required not in machines:
            problems.append(f"machine {required!r} is missing")
    if problems:
        return problems
    if not isinstance(machines["top"].states, dict):
        problems.append("machine 'top' must map state names to their descriptions")
        return problems
    top_states = set(machines["top"].state_names)
    for name, m in machines.items():
        names = m.state_names
        if len(set(names)) != len(names):
            problems.append(f"machine {name!r} lists a state twice")
        if m.initial not in names:
            problems.append(f"machine {name!r}: initial state {m.initial!r} is not one of its states")
        if m.ready is not None and m.ready not in names:
            problems.append(f"machine {name!r}: ready state {m.ready!r} is not one of its states")
    for name, spec in machines["top"].states.items():
        for region in spec.regions:
            if region not in machines:
                problems.append(f"top state {name!r} names unknown region {region!r}")
    for machine, states in doc.active_in.items():
        if machine not in machines:
            problems.append(f"active_in names unknown machine {machine!r}")
        for s in states:
            if s not in top_states:
                problems.append(f"active_in[{machine}] names unknown top state {s!r}")
            elif machines["top"].states[s].final:
                problems.append(f"active_in[{machine}] names final state {s}: it must have no way out")
    for s in doc.live_states:
        if s not in top_states:
            problems.append(f"live_states names unknown top state {s!r}")

    seen: set[tuple[str, str]] = set()
    names_seen: set[str] = set()
    chart_sources: dict[str, tuple[str, ...]] = {}
    for t in doc.transitions:
        if t.name in names_seen:
            problems.append(f"transition {t.name} is declared twice")
        names_seen.add(t.name)
        if t.machine not in machines:
            problems.append(f"{t.name}: unknown machine {t.machine!r}")
            continue
        machine_states = set(machines[t.machine].state_names)
        if isinstance(t.from_, str):
            sources: tuple[str, ...] = doc.live_states if t.from_ == "live" else (*doc.live_states, "PAUSED")
            if t.machine != "top":
                problems.append(f"{t.name}: '{t.from_}' sources are only for the top machine")
        else:
            sources = t.from_
        chart_sources[t.name] = sources
        for s in sources:
            if s not in machine_states:
                problems.append(f"{t.name}: source {s!r} is not a state of machine {t.machine!r}")
            if (t.name, s) in seen:
                problems.append(f"{t.name}: two transitions with the same name and source {s!r}")
            seen.add((t.name, s))
        if t.to == "return":
            if t.return_from is None:
                problems.append(f"{t.name}: target 'return' needs return_from")
        elif t.to not in machine_states:
            problems.append(f"{t.name}: target {t.to!r} is not a state of machine {t.machine!r}")
        if t.machine == "top":
            for s in sources:
                if machines["top"].states[s].final:
                    problems.append(f"{t.name}: final state {s} must have no way out")
        if t.epoch not in ("boot", *REGION_MACHINES, "execution", "control", "policy", "license"):
            problems.append(f"{t.name}: epoch {t.epoch!r} is not a region")
        if ("window" in t.guards) != (t.window is not None):
            problems.append(f"{t.name}: a window class goes with the 'window' guard and only with it")
        if t.system != ("system" in t.roles):
            problems.append(f"{t.name}: system transitions, and only they, take the 'system' role")
        for e in t.effects:
            problems.extend(_check_effect(t, e, machines))
    problems.extend(_check_reachability(doc, chart_sources))
    return problems


def _check_effect(t: TransitionSpec, e: Effect, machines: dict[str, MachineSpec]) -> list[str]:
    out = []
    if e.path is not None and e.path.split(".")[0] not in SECTIONS:
        out.append(f"{t.name}: effect path {e.path!r} is outside the state document")
    if e.op in ("set", "copy_input", "copy_field", "remember_return") and e.path is None:
        out.append(f"{t.name}: effect {e.op} needs a path")
    if e.op == "copy_input" and e.input not in t.inputs:
        out.append(f"{t.name}: effect copies undeclared input {e.input!r}")
    if e.op == "copy_field" and e.field not in ("window_id", "signer", "hlc", "idem_key"):
        out.append(f"{t.name}: effect copies unknown proposal field {e.field!r}")
    if e.op == "set_phase":
        if e.machine not in machines or e.value not in machines[e.machine].state_names:
            out.append(f"{t.name}: set_phase to unknown {e.machine}.{e.value}")
    if e.op == "enter_regions":
        for m in e.machines:
            if m not in machines:
                out.append(f"{t.name}: enter_regions names unknown machine {m!r}")
    return out


def _edges(doc: StatechartDoc, chart_sources: dict[str, tuple[str, ...]]) -> dict[str, set[tuple[str, str]]]:
    """Per machine, the set of (source, target) edges, including phase changes made by effects."""
    edges: dict[str, set[tuple[str, str]]] = {m: set() for m in doc.machines}
    returnable = [n for n, s in doc.machines["top"].states.items() if s.returns]  # type: ignore[union-attr]
    for t in doc.transitions:
        sources = chart_sources.get(t.name, ())
        if t.machine not in edges:
            continue
        for s in sources:
            if t.to == "return":
                for target in doc.live_states + tuple(returnable):
                    if target != s:
                        edges["top"].add((s, target))
            else:
                edges[t.machine].add((s, t.to))
        for e in t.effects:
            if e.op == "set_phase" and e.machine in edges:
                for s in doc.machines[e.machine].state_names:
                    edges[e.machine].add((s, str(e.value)))
            if e.op == "quarantine":
                for s in sources if t.machine == "top" else doc.active_in.get(t.machine, ()):
                    edges["top"].add((s, "QUARANTINED"))
    return edges


def _reach(start: str, edges: set[tuple[str, str]]) -> set[str]:
    seen = {start}
    frontier = [start]
    while frontier:
        cur = frontier.pop()
        for a, b in edges:
            if a == cur and b not in seen:
                seen.add(b)
                frontier.append(b)
    return seen


def _check_reachability(doc: StatechartDoc, chart_sources: dict[str, tuple[str, ...]]) -> list[str]:
    problems = []
    edges = _edges(doc, chart_sources)
    for name, m in doc.machines.items():
        reached = _reach(m.initial, edges[name])
        for s in m.state_names:
            if s not in reached:
                problems.append(f"machine {name!r}: state {s!r} is unreachable from {m.initial!r}")
        if name in REGION_MACHINES and m.ready is not None:
            for s in m.state_names:
                if m.ready not in _reach(s, edges[name]):
                    problems.append(f"region {name!r}: {s!r} cannot reach {m.ready!r}")
    return problems


def parse_statechart(data: Any) -> Statechart:
    """Validate raw YAML data (schema, then meaning) and build the model; raise StatechartError."""
    try:
        doc = StatechartDoc.model_validate(data)
    except ValidationError as err:
        raise StatechartError(f"statechart schema: {err}") from None
    problems = _validate_meaning(doc)
    if problems:
        raise StatechartError("statechart meaning: " + "; ".join(problems))
    return Statechart(doc)


def load_statechart(path: Path | str = STATECHART_PATH) -> Statechart:
    """Load and validate a statechart YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise StatechartError(f"cannot read statechart {path}: {err}") from None
    return parse_statechart(data)


@functools.cache
def default_statechart() -> Statechart:
    """The packaged statechart, loaded once per process."""
    return load_statechart(STATECHART_PATH)


def mermaid(chart: Statechart) -> str:
    """A Mermaid stateDiagram-v2 of the statechart, generated (never hand-edited)."""
    lines = ["stateDiagram-v2", "  [*] --> UNINITIALIZED"]
    top_edges: list[str] = []
    region_edges: dict[str, list[str]] = {}
    for t in chart.transitions.values():
        s = t.spec
        label = s.name + (f" [{', '.join(s.guards)}]" if s.guards else "")
        if s.machine == "top":
            sources: Iterable[str] = t.sources
            if isinstance(s.from_, str):
                sources = ["live" if s.from_ == "live" else "live_or_paused"]
            target = "return" if s.to == "return" else s.to
            for src in sources:
                top_edges.append(f"  {src} --> {target} : {label}")
        else:
            for src in t.sources:
                region_edges.setdefault(s.machine, []).append(f"    {s.machine}_{src} --> {s.machine}_{s.to} : {label}")
            if any(e.op == "quarantine" for e in s.effects):
                top_edges.append(f"  PROJECT_LIFECYCLE --> QUARANTINED : {label}")
    lines.append("  state BOOT {")
    lines.append("    UNINITIALIZED")
    lines.append("    LICENSE_CHECK")
    lines.append("  }")
    for top_name, regions in (("PROJECT_LIFECYCLE", REGION_MACHINES), ("EXECUTION", ("execution",))):
        lines.append(f"  state {top_name} {{")
        for i, region in enumerate(regions):
            if i:
                lines.append("    --")
            m = chart.machines[region]
            for st in m.state_names:
                lines.append(f'    state "{st}" as {region}_{st}')
            lines.append(f"    [*] --> {region}_{m.initial}")
            lines.extend(region_edges.get(region, []))
        lines.append("  }")
    lic = chart.machines["license"]
    lines.append("  state LICENSE_GRACE {")
    for st in lic.state_names:
        lines.append(f'    state "{st}" as license_{st}')
    lines.append(f"    [*] --> license_{lic.initial}")
    lines.extend(region_edges.get("license", []))
    lines.append("  }")
    lines.append('  state "any live state" as live')
    lines.append('  state "any live state or PAUSED" as live_or_paused')
    lines.append('  state "where it was" as return')
    lines.extend(top_edges)
    lines.append("  TERMINATED --> [*]")
    return "\n".join(lines) + "\n"
