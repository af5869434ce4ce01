"""docs/contract.md, the published contract, kept in step with the code where a machine can check it.

Transition names, rejection codes, answer fields, `SWOOSH_*` names, endpoints and commands. The
"Not yet in this implementation" list is checked both ways: what it names must not exist yet, so it
is shortened the day it lands.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from swoosh.worker.cli import COMMANDS
from swoosh.worker.settings import env_variables
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.errors import REJECTION_CODES
from swoosh.workflows.messages import StateView
from swoosh.workflows.statechart import default_statechart

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
PROVIDERS = (ROOT / "docs" / "providers.md").read_text(encoding="utf-8")
OPENAPI = json.loads((ROOT / "api" / "server" / "openapi.json").read_text(encoding="utf-8"))


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.S | re.M)
    assert match is not None, title
    return match.group(1)


def not_yet(kind: str) -> set[str]:
    block = re.search(r"<!-- not-yet[^>]*-->\n(.*?)<!-- /not-yet -->", TEXT, re.S)
    assert block is not None
    item = re.search(rf"^- {kind}: (.*?)(?=^- |\Z)", block.group(1), re.S | re.M)
    return set(re.findall(r"`([^`]+)`", item.group(1))) if item else set()


def test_contract_doc_transition_table_is_the_statechart() -> None:
    rows = re.findall(r"^\| (`[A-Z].*?) \|", section("Transition names (fixed; legacy callers send these)"), re.M)
    table = {name for row in rows for name in re.findall(r"`([A-Z][A-Za-z]+_[A-Z][A-Za-z]+)`", row)}
    chart = {t.name for t in default_statechart().contract_transitions}
    mentioned = set(re.findall(r"`([A-Z][a-z]+_[A-Z][A-Za-z]+)`", TEXT))
    assert table <= chart, f"in the contract's table but not the statechart: {sorted(table - chart)}"
    assert chart <= mentioned, f"statechart transitions the contract never names: {sorted(chart - mentioned)}"


def test_contract_doc_rejection_codes_are_the_codes() -> None:
    match = re.search(r"CODE one of (.*?)\.\n", section("Answers"), re.S)
    assert match is not None
    assert tuple(re.findall(r"`(\w+)`", match.group(1))) == REJECTION_CODES


def test_contract_doc_answer_fields_exist() -> None:
    answers = section("Answers")
    accepted = re.search(r"`202` accepted: `\{(.*?)\}`", answers, re.S)
    rejected = re.search(r"`400` rejected: `\{(.*?)\}`", answers, re.S)
    assert accepted is not None and rejected is not None
    guard_fields = {"guard", "ok", "reasons"}
    assert set(re.findall(r'"(\w+)"', accepted.group(1))) - guard_fields <= set(Accepted.model_fields)
    # The contract's fields, all of them; the implementation may add (SWOOSH-Go's keys, say), as the doc says.
    assert set(re.findall(r'"(\w+)"', rejected.group(1))) <= set(Rejected.model_fields)
    extra = (set(Accepted.model_fields) | set(Rejected.model_fields)) - set(re.findall(r'"(\w+)"', answers))
    added = section("How this implementation reads the contract")
    assert {f for f in extra if f"`{f}`" not in added} == set(), "name every added answer field in docs/contract.md"
    reads = section("Reads")
    state = re.search(r"`\{(\"project_id\", \"hash\".*?)\}`", reads, re.S)
    assert state is not None
    phases = {"top", "boot", "ingestion", "council", "environment", "execution"}
    assert set(re.findall(r'"(\w+)"', state.group(1))) - phases <= set(StateView.model_fields)


def test_contract_doc_swoosh_names_are_settings() -> None:
    settings = {v.name for v in env_variables()} | {"SWOOSH_CONFIG"}
    tool_table = PROVIDERS.split("Variables the command-line tools read")[1]
    tools = set(re.findall(r"^\| `(SWOOSH_[A-Z_]+)` \|", tool_table, re.M))
    named = set(re.findall(r"\b(SWOOSH_[A-Z][A-Z_]*[A-Z])\b", TEXT)) - {"SWOOSH_TEMPORAL"}
    pending = not_yet("settings")
    assert named - settings - tools - pending == set()
    assert pending & settings == set(), "implemented now: remove from the not-yet list of docs/contract.md"


def test_contract_doc_not_yet_list_names_nothing_that_exists() -> None:
    paths = {
        f"{method.upper()} {path.replace('{project_id}', '{id}')}"
        for path, ops in OPENAPI["paths"].items()
        for method in ops
    }
    landed = not_yet("endpoints") & paths
    landed |= {c for c in not_yet("commands") if c.removeprefix("swoosh ") in COMMANDS}
    landed |= not_yet("transitions") & set(default_statechart().transitions)
    assert landed == set(), f"implemented now: remove from the not-yet list of docs/contract.md: {sorted(landed)}"


def test_contract_doc_endpoints_are_served() -> None:
    served = {path.replace("{project_id}", "{id}") for path in OPENAPI["paths"]}
    for path in ("/transition", "/state", "/health", "/v1/projects/{id}", "/v1/projects/{id}/decisions"):
        assert path in served, path
