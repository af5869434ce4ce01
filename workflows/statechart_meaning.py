"""The statechart's meaning, checked after its schema: machines, sources, targets, effects, reachability.

`parse_statechart` (in `statechart`) calls `validate_meaning` on a document that passed the schema.
"""

from __future__ import annotations

from swoosh.workflows.statechart import (
    REGION_MACHINES,
    SECTIONS,
    STAY,
    Effect,
    MachineSpec,
    StatechartDoc,
    TransitionSpec,
    resolve_sources,
)


def validate_meaning(doc: StatechartDoc) -> list[str]:
    """Every problem of meaning in a schema-valid statechart (empty when there is none)."""
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
        sources = resolve_sources(doc, t)
        if isinstance(t.from_, str):
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
        elif t.to == STAY:
            if t.machine != "top":
                problems.append(f"{t.name}: target '{STAY}' is only for the top machine")
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
            if t.to == STAY:
                continue  # the top state does not change
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
