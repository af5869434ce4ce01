"""The statechart as a picture, with a project's position marked: SVG drawn here, or Mermaid text.

Pure (no I/O, no Temporal): the HTTP API renders it for `GET /v1/projects/{id}/diagram`. Each machine
of the statechart is a lane of its states, left to right in the YAML's order; a transition is an
arrow inside its machine's lane (straight to the next state, an arc above for a skip forward, below
for a way back). The top level has two pseudo-states: "any live state" (the sources of
`Control_Pause` and `Policy_Quarantine`) and "where it was" (where `Control_Resume` and
`Policy_Release` return). A state the project is in is marked `active`; the remembered position of
a machine that takes no transitions in the current top-level state (the regions while PAUSED, say)
is marked `held`. Every state is a `<g class="state …" data-machine=… data-state=…>`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from swoosh.workflows.document import phases
from swoosh.workflows.statechart import STAY, Statechart, mermaid

# Lanes top to bottom, with the frame each sits in.
LANES: tuple[tuple[str, str], ...] = (
    ("top", "top level"),
    ("boot", "BOOT (licence check)"),
    ("ingestion", "PROJECT_LIFECYCLE — parallel regions"),
    ("council", "PROJECT_LIFECYCLE — parallel regions"),
    ("environment", "PROJECT_LIFECYCLE — parallel regions"),
    ("execution", "EXECUTION loop"),
    ("license", "licence grace (orthogonal region)"),
)
LIVE, RETURN = "(any live state)", "(where it was)"

BOX_W, BOX_H, GAP, LEFT, LABEL_W = 150, 34, 46, 20, 110
LEVEL_H = 15  # height added per arc level
FILL = {"active": "#ffd54f", "held": "#e0e0e0", "": "#ffffff"}
STROKE = {"active": "#e65100", "held": "#757575", "": "#455a64"}


@dataclass(frozen=True)
class Marks:
    """Per machine, its state and whether it is active now (else held: remembered, not taking transitions)."""

    states: dict[str, tuple[str, bool]]

    def mark(self, machine: str, state: str) -> str:
        here = self.states.get(machine)
        if here is None or here[0] != state:
            return ""
        return "active" if here[1] else "held"


def marks(chart: Statechart, doc: dict[str, Any] | None) -> Marks:
    """Where a project is: every machine's phase, active when the current top-level state runs it."""
    if doc is None:
        return Marks({})
    ph = phases(doc)
    top = str(ph["top"])
    out: dict[str, tuple[str, bool]] = {"top": (top, True)}
    for machine in chart.machines:
        if machine == "top":
            continue
        phase = ph.get(machine)
        if phase is None:
            continue
        out[machine] = (str(phase), top in chart.doc.active_in.get(machine, ()))
    return Marks(out)


@dataclass
class _Edge:
    src: int
    dst: int
    label: str
    level: int = 0
    show_label: bool = True


def _lane_edges(chart: Statechart, machine: str, names: list[str]) -> list[_Edge]:
    pos = {n: i for i, n in enumerate(names)}
    edges: list[_Edge] = []
    for t in chart.transitions.values():
        s = t.spec
        if s.machine != machine:
            continue
        # The lane names the region, so its transitions show their event only; the top level mixes regions.
        event = s.name if machine == "top" else s.name.split("_", 1)[1]
        label = event + (f" [{', '.join(s.guards)}]" if s.guards else "")
        sources = [LIVE] if isinstance(s.from_, str) else list(t.sources)
        for src in sources:
            # `to: stay` (Identity_Rotate): the state does not change, a loop on its source.
            target = RETURN if s.to == "return" else src if s.to == STAY else s.to
            edges.append(_Edge(pos[src], pos[target], label))
    # Stack arcs between the same span so that neither they nor their labels overlap.
    used: dict[tuple[bool, int, int], int] = defaultdict(int)
    for e in sorted(edges, key=lambda e: (abs(e.dst - e.src), e.src)):
        if abs(e.dst - e.src) == 1 and e.dst > e.src and used[(True, e.src, e.dst)] == 0:
            used[(True, e.src, e.dst)] = 1
            continue
        above = e.dst >= e.src
        lo, hi = min(e.src, e.dst), max(e.src, e.dst)
        level = 1 + max(
            (used[(above, a, b)] for (u, a, b) in list(used) if u == above and a < hi and b > lo), default=0
        )
        e.level = level
        used[(above, lo, hi)] = max(used[(above, lo, hi)], level)
    # One transition from several sources into one state: its name once, on the outermost arc.
    outermost: dict[tuple[str, int], _Edge] = {}
    for e in edges:
        best = outermost.get((e.label, e.dst))
        if best is None or e.level > best.level:
            outermost[(e.label, e.dst)] = e
    for e in edges:
        e.show_label = outermost[(e.label, e.dst)] is e
    return edges


def _lane_names(chart: Statechart, machine: str) -> list[str]:
    names = list(chart.machines[machine].state_names)
    if machine == "top":
        names = [LIVE, *names, RETURN]
    return names


def svg(chart: Statechart, doc: dict[str, Any] | None = None, title: str = "") -> str:
    """The statechart as an SVG document, with the project's states marked when `doc` is given."""
    m = marks(chart, doc)
    parts: list[str] = []
    y = 56
    width = 0
    frames: list[tuple[str, int, int]] = []
    for machine, frame in LANES:
        names = _lane_names(chart, machine)
        edges = _lane_edges(chart, machine, names)
        up = max((e.level for e in edges if e.level and e.dst >= e.src), default=0)
        down = max((e.level for e in edges if e.level and e.dst < e.src), default=0)
        top_y = y + 14 + up * LEVEL_H + (10 if up else 0)
        lane_h = (top_y - y) + BOX_H + down * LEVEL_H + (18 if down else 8)
        xs = [LEFT + LABEL_W + i * (BOX_W + GAP) for i in range(len(names))]
        width = max(width, xs[-1] + BOX_W + LEFT)
        parts.append(f'<g class="lane" data-machine="{machine}">')
        parts.append(
            f'<text class="lane-label" x="{LEFT}" y="{top_y + BOX_H // 2 + 4}" font-weight="bold">'
            f"{escape(machine)}</text>"
        )
        for e in edges:
            parts.append(_edge_svg(e, xs, top_y))
        for i, name in enumerate(names):
            parts.append(_state_svg(machine, name, xs[i], top_y, m.mark(machine, name)))
        parts.append("</g>")
        if frames and frames[-1][0] == frame:
            frames[-1] = (frame, frames[-1][1], y + lane_h)
        else:
            frames.append((frame, y, y + lane_h))
        y += lane_h
    boxes = [
        f'<rect class="frame" x="6" y="{a - 4}" width="{width - 12}" height="{b - a + 2}" rx="8" fill="none" '
        f'stroke="#90a4ae" stroke-dasharray="6 4"/><text x="{width - 14}" y="{a + 10}" text-anchor="end" '
        f'font-size="11" fill="#607d8b">{escape(name)}</text>'
        for name, a, b in frames
    ]
    head = escape(title) if title else "SWOOSH statechart"
    legend = (
        f'<text x="{LEFT}" y="24" font-size="16" font-weight="bold">{head}</text>'
        f'<rect x="{LEFT}" y="34" width="14" height="10" fill="{FILL["active"]}" stroke="{STROKE["active"]}"/>'
        f'<text x="{LEFT + 20}" y="43" font-size="11">active</text>'
        f'<rect x="{LEFT + 70}" y="34" width="14" height="10" fill="{FILL["held"]}" stroke="{STROKE["held"]}"/>'
        f'<text x="{LEFT + 90}" y="43" font-size="11">held (remembered while another top-level state runs)</text>'
    )
    height = y + 10
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Helvetica, Arial, sans-serif" font-size="12">\n'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#546e7a"/></marker></defs>\n'
        f'<rect width="{width}" height="{height}" fill="#fafafa"/>\n'
        + legend
        + "\n"
        + "\n".join(boxes)
        + "\n"
        + "\n".join(parts)
        + "\n</svg>\n"
    )


def _state_svg(machine: str, name: str, x: int, y: int, mark: str) -> str:
    pseudo = name in (LIVE, RETURN)
    cls = " ".join(c for c in ("state", mark, "pseudo" if pseudo else "") if c)
    dash = ' stroke-dasharray="4 3"' if pseudo else ""
    width = 3 if mark == "active" else 1.2
    bold = ' font-weight="bold"' if mark == "active" else ""
    return (
        f'<g class="{cls}" id="state-{machine}-{"".join(ch for ch in name if ch.isalnum() or ch == "_")}" '
        f"data-machine={quoteattr(machine)} data-state={quoteattr(name)}>"
        f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="10" fill="{FILL[mark]}" '
        f'stroke="{STROKE[mark]}" stroke-width="{width}"{dash}/>'
        f'<text x="{x + BOX_W // 2}" y="{y + BOX_H // 2 + 4}" text-anchor="middle"{bold}>{escape(name)}</text></g>'
    )


def _edge_svg(e: _Edge, xs: list[int], y: int) -> str:
    label = escape(e.label)
    shown = label if e.show_label else ""
    if e.src == e.dst:  # a self loop above the box
        x = xs[e.src] + BOX_W // 2
        d = f"M {x - 20} {y} C {x - 30} {y - 26}, {x + 30} {y - 26}, {x + 20} {y}"
        lx, ly = x, y - 22
    elif e.level == 0:
        # Next state to the right: a straight arrow, its name just above the boxes' top edge.
        x1, x2, my = xs[e.src] + BOX_W, xs[e.dst], y + BOX_H // 2
        d = f"M {x1} {my} L {x2} {my}"
        lx, ly = (x1 + x2) // 2, y - 4
    else:
        above = e.dst > e.src
        x1 = xs[e.src] + BOX_W // 2 + (12 if above else -12)
        x2 = xs[e.dst] + BOX_W // 2 + (-12 if above else 12)
        edge_y = y if above else y + BOX_H
        h = e.level * LEVEL_H + 8
        cy = edge_y - h if above else edge_y + h
        d = f"M {x1} {edge_y} C {x1} {cy}, {x2} {cy}, {x2} {edge_y}"
        lx, ly = (x1 + x2) // 2, (edge_y - int(h * 0.75) - 2) if above else (edge_y + int(h * 0.75) + 10)
    return (
        f'<g class="edge"><path d="{d}" fill="none" stroke="#546e7a" marker-end="url(#arrow)"/>'
        f'<text x="{lx}" y="{ly}" text-anchor="middle" font-size="9" fill="#37474f" '
        f'stroke="#fafafa" stroke-width="3" paint-order="stroke">{shown}</text><title>{label}</title></g>'
    )


def mermaid_marked(chart: Statechart, doc: dict[str, Any] | None = None) -> str:
    """`mermaid(chart)` with the project's states styled `active` (and `held`)."""
    text = mermaid(chart).rstrip("\n")
    m = marks(chart, doc)
    lines = [
        text,
        "  classDef active fill:#ffd54f,stroke:#e65100,stroke-width:3px,font-weight:bold",
        "  classDef held fill:#e0e0e0,stroke:#757575",
    ]
    for machine, (state, active) in sorted(m.states.items()):
        node = _mermaid_id(machine, state)
        if node is not None:
            lines.append(f"  class {node} {'active' if active else 'held'}")
    return "\n".join(lines) + "\n"


def _mermaid_id(machine: str, state: str) -> str | None:
    if machine == "top":
        return state
    if machine in ("ingestion", "council", "environment", "execution", "license"):
        return f"{machine}_{state}"
    return None  # the boot machine is drawn by the top level's BOOT states
