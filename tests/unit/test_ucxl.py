"""Decision-record backlinks parse under CHORUS's UCXL grammar (its published regular expressions).

The component, path and temporal-segment patterns below are CHORUS's own (`pkg/ucxl/address.go`): one
rule for agent, role, project and task, one for the path, one per temporal segment form. The address
is split by the grammar CHORUS documents: `ucxl://agent:role@project:task/temporal_segment/path`.
"""

from __future__ import annotations

import re

import pytest

from swoosh.workflows.decision import ucxl_backlink, ucxl_project
from swoosh.workflows.statechart import SYSTEM_SIGNER, default_statechart
from tests.unit.helpers import SIGNERS, Driver

# CHORUS pkg/ucxl/address.go, verbatim (Go RE2 syntax; Python's re reads these the same way).
COMPONENT = re.compile(r"^[a-zA-Z0-9_\-]+$|^any$")
PATH = re.compile(r"^[a-zA-Z0-9_\-/\.]*$")
TEMPORAL = (
    re.compile(r"^\*\^$"),  # *^  latest
    re.compile(r"^\*~$"),  # *~  any
    re.compile(r"^\*~(\d+)$"),  # *~N specific
    re.compile(r"^~~(\d+)$"),  # ~~N backward
    re.compile(r"^\^\^(\d+)$"),  # ^^N forward
)
ADDRESS = re.compile(r"^ucxl://([^:/@]+):([^:/@]+)@([^:/@]+):([^:/@]+)/([^/]+)/(.*)$")


def parse(address: str) -> dict[str, str]:
    """CHORUS's parse: split, then every component, the temporal segment and the path checked."""
    m = ADDRESS.match(address)
    if m is None:
        raise ValueError(f"not ucxl://agent:role@project:task/temporal/path: {address}")
    agent, role, project, task, temporal, path = m.groups()
    for name, value in (("agent", agent), ("role", role), ("project", project), ("task", task)):
        if not COMPONENT.match(value):
            raise ValueError(f"{name} {value!r} breaks the component rule")
    if not any(p.match(temporal) for p in TEMPORAL):
        raise ValueError(f"temporal segment {temporal!r} is none of *^, *~, *~N, ~~N, ^^N")
    if not PATH.match(path):
        raise ValueError(f"path {path!r} breaks the path rule")
    return {"agent": agent, "role": role, "project": project, "task": task, "temporal": temporal, "path": path}


def test_backlinks_of_a_whole_lifecycle_parse_under_chorus_grammar() -> None:
    d = Driver().execution().cycle()
    d.run("License_Throttled")
    d.system("License_GraceExpired")
    assert len(d.records) == 19
    for record in d.records:
        parsed = parse(record["ucxl"])
        assert parsed["temporal"] == f"*~{record['index']}"
        assert parsed["task"] == record["transition"] and parsed["project"] == "demo"
        assert parsed["path"] == f"decisions/{record['index']}"
    assert parse(d.records[-1]["ucxl"])["agent"] == "swoosh" and d.records[-1]["signer"] == SYSTEM_SIGNER


@pytest.mark.parametrize("transition", sorted(default_statechart().transitions))
def test_every_transition_and_role_makes_a_parsable_backlink(transition: str) -> None:
    roles = default_statechart().transitions[transition].spec.roles
    for role in roles:
        link = ucxl_backlink(
            "p-1", SIGNERS.id("operator"), role, transition, "2025-10-19T01:23:45.678+00:00#12", 7, "chorus"
        )
        assert parse(link)["role"] == role


@pytest.mark.parametrize("project_id", ["demo", "a.b", "any", "x" * 64, "..", "a_b-c.d"])
def test_project_ids_the_component_rule_refuses_become_unique_components(project_id: str) -> None:
    link = ucxl_backlink(project_id, SIGNERS.id("operator"), "operator", "Boot_ConfigOk", "x", 1, "chorus")
    project = parse(link)["project"]
    assert project != "any"
    if "." not in project_id and project_id != "any":
        assert project == project_id
    assert ucxl_project("a.b") != ucxl_project("a-b") and ucxl_project("a.b") != ucxl_project("a_b")


def test_the_legacy_backlink_does_not_parse_and_is_kept_only_for_old_projects() -> None:
    legacy = ucxl_backlink(
        "demo", SIGNERS.id("operator"), "operator", "Boot_ConfigOk", "2026-01-02T03:04:05.678+00:00#0", 1
    )
    assert legacy.endswith("/2026-01-02T03:04:05.678Z~0/decisions/1")
    with pytest.raises(ValueError, match="temporal segment"):
        parse(legacy)
