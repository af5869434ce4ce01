"""Plan, from the statechart alone, a shortest path of accepted transitions that reaches each transition.

A breadth-first search over the pure engine from the genesis document: at each node every
transition of the YAML is tried with valid inputs and passing facts. The result drives the
model-based edge-coverage test through the real workflow; a transition with no path is a
statechart bug (unreachable edge) and fails that test.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from swoosh.api.client import ProposalFactory
from swoosh.guards.context import GuardContext
from swoosh.guards.evaluate import evaluate_guards
from swoosh.guards.facts import BeatFrame, Facts, LicenseFact, McpFact
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import ESCAPES_QUARANTINE, Admitted, Engine, EngineSnapshot, new_engine_config
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.hlc import HLC
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.reducer import check_source, clone
from swoosh.workflows.statechart import Statechart, default_statechart
from swoosh.workflows.testing.driver import valid_inputs

TIMER = "<timer>"  # a step taken by time passing (the licence grace timer), not by a proposal
TIMED: dict[str, str] = {"License_GraceExpired": "License_Throttled"}  # system transition -> what arms its timer
WINDOW = "backbeat:W-1"


@dataclass
class _Node:
    engine: Engine
    version: int
    path: tuple[str, ...]


def _signature(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (
        doc["control"]["top"],
        doc["boot"]["phase"],
        doc["ingestion"]["phase"],
        doc["council"]["phase"],
        doc["environment"]["phase"],
        doc["execution"]["phase"],
        doc["control"]["license"]["phase"],
        doc["control"]["paused_from"],
        doc["policy"]["quarantined_from"],
        min(len(doc["ingestion"]["versions"]), 2),
        min(len(doc["council"]["members"]), 1),
        doc["execution"]["cycle"] > 0,
    )


def permissive_facts(now_ms: int, window_class: str | None, throttled: bool = False) -> Facts:
    beat = None
    if window_class is not None:
        beat = BeatFrame(window_id=WINDOW, phase=window_class, beat_index=1, tempo_bpm=60,
                         deadline_at_ms=now_ms + 60_000, received_at_ms=now_ms)  # fmt: skip
    status = "throttled" if throttled else "valid"
    return Facts(
        now_ms=now_ms,
        license=LicenseFact(status=status, license_id="LIC", fetched_at_ms=now_ms, verified=True),
        mcp=McpFact(reachable=True, tools={"ucxl.resolve": "1.0.0", "git": "2.43.0"}, fetched_at_ms=now_ms),
        beat=beat,
    )


def try_transition(node: _Node, name: str, factory: ProposalFactory, now_ms: int) -> _Node | None:
    """The node after `name` is accepted from `node`, or None when it is not."""
    doc = node.engine.document
    top = doc["control"]["top"]
    if top == "TERMINATED" or (top == "QUARANTINED" and name not in ESCAPES_QUARANTINE):
        return None
    try:  # cheap source-state check before signing anything
        check_source(node.engine.chart, doc, node.engine.chart.transitions[name])
    except ProposalError:
        return None
    engine = Engine(node.engine.chart, EngineSnapshot.model_validate(
        {"document": clone(node.engine.document), "config": node.engine.config}))  # fmt: skip
    try:
        inputs, version = valid_inputs(factory, name, engine.document, len(node.path), node.version, WINDOW)
    except (ValueError, KeyError, IndexError):
        return None
    hlc = HLC(now_ms + len(node.path), 0).format()
    body = factory.body(
        name, engine.head_hash, inputs, window_id=WINDOW, hlc=hlc, idem_key=f"plan:{len(node.path)}:{name}"
    )
    try:
        admitted = engine.admit(ProposalRequest(body=body), now_ms + 10_000)
        if not isinstance(admitted, Admitted):
            return None
        spec = admitted.transition.spec
        facts = permissive_facts(now_ms, spec.window, throttled=name == "License_Throttled")
        ctx = GuardContext(project_id=engine.project_id, transition=name, signer=admitted.proposal.signer,
                           window_id=WINDOW, window_class=spec.window)  # fmt: skip
        outcomes = evaluate_guards(spec.guards, engine.document, inputs, facts, ctx)
        engine.apply(admitted, outcomes, now_ms + 10_000)
    except ProposalError:
        return None
    return _Node(engine, version, (*node.path, name))


def plan_paths(factory: ProposalFactory, chart: Statechart | None = None, max_depth: int = 24) -> dict[str, list[str]]:
    """For every transition, a shortest list of steps from genesis ending with that transition."""
    chart = chart or default_statechart()
    now_ms = 1_800_000_000_000
    doc = genesis(chart, factory.project_id, factory.signers.keyring())
    start = _Node(Engine(chart, EngineSnapshot(document=doc, config=new_engine_config(max_offset_ms=10**12))), 0, ())
    paths: dict[str, list[str]] = {}
    seen = {_signature(doc)}
    queue: deque[_Node] = deque([start])
    names = [t.name for t in chart.transitions.values() if not t.spec.system]
    while queue and len(paths) < len(names):
        node = queue.popleft()
        if len(node.path) >= max_depth:
            continue
        for name in names:
            child = try_transition(node, name, factory, now_ms)
            if child is None:
                continue
            paths.setdefault(name, list(child.path))
            sig = _signature(child.engine.document)
            if sig not in seen:
                seen.add(sig)
                queue.append(child)
    for system, armed_by in TIMED.items():
        if armed_by in paths:
            paths[system] = [*paths[armed_by], TIMER]
    return paths
