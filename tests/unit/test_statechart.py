"""The statechart YAML: the contract's catalogue, the loader's schema and meaning checks, the CLI and the docs."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from swoosh.worker.cli import main, statechart_markdown
from swoosh.workflows.errors import StatechartError
from swoosh.workflows.statechart import STATECHART_PATH, default_statechart, load_statechart, mermaid, parse_statechart

REPO = Path(__file__).resolve().parents[2]

# docs/contract.md "Transition names (fixed; legacy callers send these)", in its order, and Identity_Rotate.
CONTRACT_TRANSITIONS = [
    "Boot_ConfigOk",
    "Boot_Licensed",
    "Boot_LicenseFailed",
    "Ingestion_SourcesResolved",
    "Ingestion_BytesOk",
    "Ingestion_SchemaOk",
    "Ingestion_PolicyViolation",
    "Ingestion_CorpusBuilt",
    "Ingestion_RollbackIndex",
    "Council_ProfilesLoaded",
    "Council_QuorumCert",
    "Council_McpGreen",
    "Council_Eject",
    "Environment_CapacityOk",
    "Environment_Installed",
    "Environment_Green",
    "Environment_Amber",
    "Environment_Deprovision",
    "Execution_AllReady",
    "Execution_PlanLocked",
    "Execution_BeatReviewGate",
    "Execution_ApprovalsThreshold",
    "Execution_NextWindow",
    "Execution_QuorumLost",
    "Recovery_QuorumRestored",
    "Control_Pause",
    "Control_Resume",
    "Policy_Quarantine",
    "Policy_Release",
    "Policy_ConfirmedBlock",
    "License_Throttled",
    "License_Restored",
    # CONTRACT.md "Identities of a running project".
    "Identity_Rotate",
]

# The contract's "guard(s) at least" column.
CONTRACT_GUARDS = {
    "Boot_Licensed": {"license"},
    "Ingestion_SourcesResolved": {"policy"},
    "Ingestion_SchemaOk": {"policy"},
    "Council_QuorumCert": {"quorum"},
    "Council_McpGreen": {"mcp"},
    "Execution_AllReady": {"readiness"},
    "Execution_PlanLocked": {"window"},
    "Execution_BeatReviewGate": {"window"},
    "Execution_ApprovalsThreshold": {"window", "approvals"},
    "Execution_NextWindow": {"window"},
    "Recovery_QuorumRestored": {"quorum"},
    "License_Throttled": {"license"},
    "License_Restored": {"license"},
}
OPERATOR_ONLY = ("Control_Pause", "Control_Resume", "Policy_Release", "Policy_ConfirmedBlock")


def raw() -> dict[str, Any]:
    """A fresh deep copy of the packaged YAML, for a test to break."""
    return copy.deepcopy(_RAW)


_RAW: dict[str, Any] = yaml.safe_load(STATECHART_PATH.read_text(encoding="utf-8"))


def transition(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["transitions"] if t["name"] == name)


def broken(mutate: Callable[[dict[str, Any]], object]) -> str:
    """Mutate a copy of the YAML, parse it, and return the loader's complaint."""
    data = raw()
    mutate(data)
    with pytest.raises(StatechartError) as err:
        parse_statechart(data)
    return str(err.value)


# ---------------------------------------------------------------------- the catalogue


def test_statechart_has_exactly_the_contract_transitions_plus_system_ones() -> None:
    chart = default_statechart()
    assert sorted(t.name for t in chart.contract_transitions) == sorted(CONTRACT_TRANSITIONS)
    assert len(chart.contract_transitions) == 33


def test_statechart_system_transitions_take_only_the_system_role() -> None:
    system = [t for t in default_statechart().transitions.values() if t.spec.system]
    assert [t.name for t in system] == ["License_GraceExpired"]
    assert all(t.spec.roles == ("system",) for t in system)


@pytest.mark.parametrize(("name", "guards"), sorted(CONTRACT_GUARDS.items()))
def test_statechart_has_the_contract_guards(name: str, guards: set[str]) -> None:
    assert guards <= set(default_statechart().transitions[name].spec.guards)


@pytest.mark.parametrize("name", OPERATOR_ONLY)
def test_statechart_operator_transitions_need_the_operator_role(name: str) -> None:
    assert default_statechart().transitions[name].spec.roles == ("operator",)


def test_statechart_control_and_policy_transitions_take_a_reason() -> None:
    chart = default_statechart()
    for name in ("Control_Pause", "Control_Resume", "Policy_Quarantine", "Policy_Release", "Policy_ConfirmedBlock"):
        assert set(chart.transitions[name].spec.inputs) == {"reason"}


def test_statechart_boot_config_ok_takes_optional_config_hash() -> None:
    field = default_statechart().transitions["Boot_ConfigOk"].spec.inputs["config_hash"]
    assert field.type == "hash" and not field.required


def test_statechart_compensations_are_marked() -> None:
    chart = default_statechart()
    marked = sorted(t.name for t in chart.transitions.values() if t.spec.compensation)
    assert marked == ["Council_Eject", "Environment_Deprovision", "Ingestion_RollbackIndex"]


def test_statechart_time_gated_transitions_name_their_window_class() -> None:
    chart = default_statechart()
    windows = {t.name: t.spec.window for t in chart.transitions.values() if t.spec.window}
    assert windows == {
        "Execution_PlanLocked": "work",
        "Execution_BeatReviewGate": "review",
        "Execution_ApprovalsThreshold": "reverb",
        "Execution_NextWindow": "plan",
    }


def test_statechart_live_sources_resolve_to_live_states() -> None:
    chart = default_statechart()
    assert "PAUSED" not in chart.transitions["Control_Pause"].sources
    assert "PAUSED" in chart.transitions["Policy_Quarantine"].sources
    assert "TERMINATED" not in chart.transitions["Policy_Quarantine"].sources


def test_statechart_schema_hash_is_stable_per_content() -> None:
    assert load_statechart().schema_hash == default_statechart().schema_hash
    data = raw()
    data["version"] = 2
    assert parse_statechart(data).schema_hash != default_statechart().schema_hash


def test_statechart_packaged_yaml_parses() -> None:
    assert parse_statechart(raw()).transitions.keys() == default_statechart().transitions.keys()


# ---------------------------------------------------------------------- the loader rejects


def test_statechart_rejects_unknown_target() -> None:
    assert "target 'NOWHERE' is not a state" in broken(
        lambda d: transition(d, "Ingestion_BytesOk").update(to="NOWHERE")
    )


def test_statechart_rejects_unknown_source() -> None:
    assert "source 'NOWHERE' is not a state" in broken(
        lambda d: transition(d, "Ingestion_BytesOk").update({"from": ["NOWHERE"]})
    )


def test_statechart_rejects_unreachable_state() -> None:
    assert "state 'ORPHAN' is unreachable" in broken(lambda d: d["machines"]["execution"]["states"].append("ORPHAN"))


def test_statechart_rejects_duplicate_transition_name() -> None:
    msg = broken(lambda d: d["transitions"].append(copy.deepcopy(transition(d, "Environment_Green"))))
    assert "Environment_Green is declared twice" in msg


def test_statechart_rejects_way_out_of_terminated() -> None:
    msg = broken(lambda d: transition(d, "Boot_ConfigOk")["from"].append("TERMINATED"))
    assert "final state TERMINATED must have no way out" in msg


def test_statechart_rejects_terminated_as_live_state() -> None:
    assert "final state TERMINATED must have no way out" in broken(lambda d: d["live_states"].append("TERMINATED"))


def test_statechart_rejects_region_active_in_terminated() -> None:
    broken(lambda d: d["active_in"]["ingestion"].append("TERMINATED"))


def test_statechart_rejects_region_state_that_cannot_reach_ready() -> None:
    def strand_degraded(d: dict[str, Any]) -> None:
        transition(d, "Environment_Green")["from"] = ["HEALTHCHECK"]
        transition(d, "Environment_Deprovision")["from"] = ["PROVISION", "HEALTHCHECK", "READY"]

    assert "region 'environment': 'DEGRADED' cannot reach 'READY'" in broken(strand_degraded)


def test_statechart_rejects_window_class_without_window_guard() -> None:
    assert "window class goes with the 'window' guard" in broken(
        lambda d: transition(d, "Environment_Green").update(window="work")
    )


def test_statechart_rejects_window_guard_without_window_class() -> None:
    msg = broken(lambda d: transition(d, "Execution_PlanLocked").update(window=None))
    assert "window class goes with the 'window' guard" in msg


def test_statechart_rejects_unknown_key() -> None:
    msg = broken(lambda d: transition(d, "Environment_Green").update(colour="green"))
    assert msg.startswith("statechart schema") and "colour" in msg


def test_statechart_rejects_unknown_top_level_key() -> None:
    assert broken(lambda d: d.update(extras={})).startswith("statechart schema")


def test_statechart_rejects_unknown_guard_name() -> None:
    assert broken(lambda d: transition(d, "Environment_Green").update(guards=["luck"])).startswith("statechart schema")


def test_statechart_rejects_transition_without_roles() -> None:
    assert broken(lambda d: transition(d, "Environment_Green").update(roles=[])).startswith("statechart schema")


def test_statechart_rejects_system_role_on_caller_transition() -> None:
    assert "system transitions, and only they" in broken(
        lambda d: transition(d, "Environment_Green").update(roles=["system"])
    )


def test_statechart_rejects_missing_machine() -> None:
    assert "machine 'license' is missing" in broken(lambda d: d["machines"].pop("license"))


def test_statechart_rejects_bad_initial_state() -> None:
    assert "initial state 'NOPE'" in broken(lambda d: d["machines"]["council"].update(initial="NOPE"))


def test_statechart_rejects_unknown_epoch_region() -> None:
    assert "epoch 'weather' is not a region" in broken(
        lambda d: transition(d, "Environment_Green").update(epoch="weather")
    )


def test_statechart_rejects_effect_outside_document() -> None:
    msg = broken(
        lambda d: transition(d, "Environment_Green")["effects"].append({"op": "set", "path": "elsewhere.x", "value": 1})
    )
    assert "outside the state document" in msg


def test_statechart_rejects_copy_of_undeclared_input() -> None:
    effect = {"op": "copy_input", "input": "ghost", "path": "environment.health"}
    assert "undeclared input 'ghost'" in broken(lambda d: transition(d, "Environment_Green")["effects"].append(effect))


def test_statechart_rejects_return_without_return_from() -> None:
    assert "needs return_from" in broken(lambda d: transition(d, "Control_Resume").update(return_from=None))


def test_load_statechart_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(StatechartError, match="cannot read"):
        load_statechart(tmp_path / "absent.yaml")


def test_load_statechart_reports_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("machines: [unclosed", encoding="utf-8")
    with pytest.raises(StatechartError, match="cannot read"):
        load_statechart(path)


# ---------------------------------------------------------------------- CLI and docs


def test_docs_statechart_md_is_up_to_date() -> None:
    committed = (REPO / "docs" / "statechart.md").read_text(encoding="utf-8")
    assert committed == statechart_markdown(), "docs/statechart.md is stale: run `swoosh statechart mermaid`"


def test_mermaid_names_every_transition() -> None:
    diagram = mermaid(default_statechart())
    assert diagram.startswith("stateDiagram-v2\n")
    for name in CONTRACT_TRANSITIONS:
        assert name in diagram


def test_cli_statechart_check_lists_all_contract_transitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["statechart", "check"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line and not line.startswith("statechart ok")}
    assert set(CONTRACT_TRANSITIONS) <= listed
    assert "statechart ok: 33 contract transitions, 1 system" in out


def test_cli_statechart_check_json_is_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["statechart", "check", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["transition"] for r in rows if not r["system"]] == [
        t.name for t in default_statechart().contract_transitions
    ]


def test_cli_statechart_mermaid_writes_the_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "docs" / "statechart.md"
    assert main(["statechart", "mermaid", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == statechart_markdown()
    assert f"wrote {target}" in capsys.readouterr().out
