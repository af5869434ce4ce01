"""The statechart picture: every state and transition drawn, the project's position marked."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from swoosh.workflows.diagram import LIVE, RETURN, marks, mermaid_marked, svg
from swoosh.workflows.statechart import default_statechart
from tests.unit.helpers import Driver

SVG = "{http://www.w3.org/2000/svg}"
CHART = default_statechart()


def states(picture: str) -> dict[tuple[str, str], str]:
    """(machine, state) -> mark ("active", "held" or "") of every state box in an SVG picture."""
    root = ET.fromstring(picture.encode())
    out = {}
    for g in root.iter(f"{SVG}g"):
        classes = g.get("class", "").split()
        if "state" in classes:
            mark = "active" if "active" in classes else "held" if "held" in classes else ""
            out[(g.get("data-machine", ""), g.get("data-state", ""))] = mark
    return out


def marked(picture: str, mark: str) -> set[tuple[str, str]]:
    return {k for k, v in states(picture).items() if v == mark}


def test_diagram_draws_every_state_and_transition() -> None:
    picture = svg(CHART)
    drawn = states(picture)
    expected = {(m, s) for m, spec in CHART.machines.items() for s in spec.state_names}
    assert set(drawn) == expected | {("top", LIVE), ("top", RETURN)}
    assert set(drawn.values()) == {""}  # no project: nothing marked
    titles = {t.text for t in ET.fromstring(picture.encode()).iter(f"{SVG}title")}
    for t in CHART.transitions.values():
        name = t.name if t.spec.machine == "top" else t.name.split("_", 1)[1]
        assert any(title and title.startswith(name) for title in titles), t.name


def test_diagram_genesis_marks_the_boot_states() -> None:
    d = Driver()
    picture = svg(CHART, d.doc)
    assert marked(picture, "active") == {("top", "UNINITIALIZED"), ("boot", "UNINITIALIZED")}
    # The loop and the licence region are not running yet: their initial states are remembered, not live.
    assert marked(picture, "held") == {("execution", "IDLE"), ("license", "OK")}


def test_diagram_parallel_regions_are_all_active_in_project_lifecycle() -> None:
    d = Driver().boot()
    d.run("Ingestion_SourcesResolved", "Council_ProfilesLoaded")
    picture = svg(CHART, d.doc)
    assert marked(picture, "active") == {
        ("top", "PROJECT_LIFECYCLE"),
        ("ingestion", "FETCH"),
        ("council", "ELECT"),
        ("environment", "ALLOCATE"),
        ("license", "OK"),
    }
    assert ("boot", "LICENSED") in marked(picture, "held")


def test_diagram_paused_execution_holds_everything_but_paused() -> None:
    d = Driver().execution()
    d.run("Execution_PlanLocked")
    d.submit("Control_Pause", {"reason": "lunch"})
    picture = svg(CHART, d.doc, title="paused <project>")
    assert marked(picture, "active") == {("top", "PAUSED")}
    assert {("execution", "WORK"), ("ingestion", "READY"), ("council", "READY"), ("environment", "READY")} <= marked(
        picture, "held"
    )
    assert "paused &lt;project&gt;" in picture  # the title is escaped


def test_diagram_marks_are_from_the_document_phases() -> None:
    d = Driver().execution()
    m = marks(CHART, d.doc)
    assert m.states["top"] == ("EXECUTION", True)
    assert m.states["execution"] == ("PLAN", True)
    assert m.states["ingestion"] == ("READY", False)


@pytest.mark.parametrize("doc", [None, "execution"])
def test_diagram_mermaid_is_the_statechart_with_classes(doc: Any) -> None:
    document = Driver().execution().doc if doc else None
    text = mermaid_marked(CHART, document)
    plain = text.split("  classDef active")[0]
    assert plain.startswith("stateDiagram-v2\n")
    assert "classDef active" in text and "classDef held" in text
    lines = set(text.splitlines())
    if document is None:
        assert not any(line.startswith("  class ") for line in lines)
    else:
        assert {"  class EXECUTION active", "  class execution_PLAN active", "  class ingestion_READY held"} <= lines
