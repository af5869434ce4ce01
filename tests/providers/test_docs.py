"""docs/providers.md: every worked example a caller may copy is valid as written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from swoosh.activities.backbeat import BarShape, parse_frame, parse_published
from swoosh.activities.kaching import LicenceFile, SignedVerdict
from swoosh.guards.context import GuardContext
from swoosh.guards.council import quorum_guard
from swoosh.guards.facts import Facts, McpFact
from swoosh.guards.mcp import mcp_guard
from swoosh.worker.settings import Settings
from swoosh.workflows.crypto import verify_object

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"
TEXT = DOCS.read_text(encoding="utf-8")


def example(name: str) -> Any:
    match = re.search(rf"<!-- example: {name} -->\n```json\n(.*?)```", TEXT, re.S)
    assert match is not None, name
    return json.loads(match.group(1))


def test_docs_licence_file_example_verifies() -> None:
    signed = LicenceFile.model_validate(example("licence-file"))
    assert verify_object(signed.signer, signed.license.model_dump(), signed.signature)


def test_docs_verdict_example_verifies() -> None:
    signed = SignedVerdict.model_validate(example("verdict"))
    assert verify_object(signed.signer, signed.verdict.model_dump(), signed.signature)


def test_docs_beat_frame_example_parses() -> None:
    frame = parse_frame(example("beat-frame"), received_at_ms=1_760_000_004_500, max_skew_ms=0)
    assert (frame.phase, frame.deadline_at_ms, frame.pressure) == ("review", 1_760_000_006_000, 40)


def test_docs_published_backbeat_frame_example_reads_as_the_docs_say() -> None:
    received = 1_760_000_004_000  # 2025-10-09T08:53:24.000Z
    frame = parse_published(example("backbeat-frame"), received, BarShape(4, 1))
    assert (frame.phase, frame.deadline_at_ms) == ("review", 1_760_000_006_000)
    assert frame.window_id == "backbeat:7e9b0e6c4c9a4e59b7f2d9a3c1b2e4d5"


def test_docs_quorum_example_passes_the_quorum_guard() -> None:
    inputs = example("quorum-inputs")
    state = {
        "boot": {"identities": [{"id": m, "roles": ["council"]} for m in inputs["members"]]},
        "council": {"ejected": []},
        "epoch": {"council": 1, "execution": 0},  # just after Council_ProfilesLoaded
    }
    ctx = GuardContext(project_id="demo", transition="Council_QuorumCert", signer="s", window_id="backbeat:W-220000000")
    outcome = quorum_guard(state, inputs, Facts(now_ms=0), ctx)
    assert outcome.ok, outcome.reasons


def test_docs_tool_pins_example_matches_the_embedded_default() -> None:
    fact = McpFact(reachable=True, tools=Settings().mcp.tools, fetched_at_ms=0)
    ctx = GuardContext(project_id="demo", transition="Council_McpGreen", signer="s")
    assert mcp_guard({}, example("tool-pins"), Facts(now_ms=0, mcp=fact), ctx).ok


def test_docs_toml_example_loads(tmp_path: Path) -> None:
    match = re.search(r"```toml\n(.*?)```", TEXT, re.S)
    assert match is not None
    path = tmp_path / "swoosh.toml"
    path.write_text(match.group(1), encoding="utf-8")
    s = Settings.load({}, config_file=path)
    assert s.kaching.mode == "http" and s.shhh.rules[0].id == "internal-host"
