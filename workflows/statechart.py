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
    "text",
    "text_list",
    "hash",
    "count",
    "signer",
    "signer_list",
    "pins",
    "region_hashes",
    "vote_list",
    "approval_list",
    "identity_list",
    "rotation_approval_list",
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
    "rotate_identities",
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
# `from: any` = every top state that is not final; `to: stay` = the top state does not change.
ANY_SOURCE = "any"
STAY = "stay"


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
    from_: tuple[str, ...] | Literal["live", "live_or_paused", "any"] = Field(alias="from")
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
        return resolve_sources(self.doc, spec)

    def top_state(self, name: str) -> TopStateSpec:
        states = self.top.states
        assert isinstance(states, dict)  # checked by validate_meaning
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
                    "to": {"return": f"<{s.return_from}>", STAY: "<unchanged>"}.get(s.to, s.to),
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


def resolve_sources(doc: StatechartDoc, spec: TransitionSpec) -> tuple[str, ...]:
    """A transition's source states, its `live` / `live_or_paused` / `any` keyword resolved."""
    if spec.from_ == "live":
        return doc.live_states
    if spec.from_ == "live_or_paused":
        return (*doc.live_states, "PAUSED")
    if isinstance(spec.from_, str):  # ANY_SOURCE
        top = doc.machines["top"].states
        return tuple(n for n, s in top.items() if not s.final) if isinstance(top, dict) else ()
    return spec.from_


def parse_statechart(data: Any) -> Statechart:
    """Validate raw YAML data (schema, then meaning) and build the model; raise StatechartError."""
    try:
        doc = StatechartDoc.model_validate(data)
    except ValidationError as err:
        raise StatechartError(f"statechart schema: {err}") from None
    from swoosh.workflows.statechart_meaning import validate_meaning  # it reads this module's models

    problems = validate_meaning(doc)
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
                sources = [s.from_ if s.from_ != ANY_SOURCE else "any_state"]
            for src in sources:
                target = src if s.to == STAY else s.to
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
    lines.append('  state "any state but TERMINATED" as any_state')
    lines.append('  state "where it was" as return')
    lines.extend(top_edges)
    lines.append("  TERMINATED --> [*]")
    return "\n".join(lines) + "\n"
