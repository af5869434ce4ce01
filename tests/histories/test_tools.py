"""`swoosh replay` and `swoosh audit verify` on the committed histories, and on tampered copies."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from swoosh.worker.cli import main
from swoosh.workflows.replay.audit import audit
from swoosh.workflows.replay.fold import fold
from swoosh.workflows.replay.history import load_history_file, run_facts

HERE = Path(__file__).parent


def _runs(name: str) -> list[Path]:
    return sorted(HERE.glob(f"{name}-run*.json"))


def test_replay_tool_accepts_committed_histories(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWOOSH_ENCRYPTION_KEYS_FILE", str(HERE / "encryption-test.key"))  # plaintext ones too
    assert main(["replay", str(HERE), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True
    assert {p["project_id"] for p in summary["projects"]} >= {"history-lifecycle", "history-snapshots"}
    snapshots = next(p for p in summary["projects"] if p["project_id"] == "history-snapshots")
    assert snapshots["fold"]["snapshot_checks"] >= 2 and snapshots["fold"]["ok"]


def test_fold_reaches_the_hash_the_workflow_reported() -> None:
    facts = [run_facts(h) for p in _runs("lifecycle") for h in load_history_file(p)]
    result = fold(facts)
    assert result.ok, result.problems
    assert result.transitions == 21 and result.final_hash == result.reported_hash


def _records(name: str) -> list[dict]:  # type: ignore[type-arg]
    facts = [run_facts(h) for p in _runs(name) for h in load_history_file(p)]
    return [r for f in facts for _, r in sorted(f.records.items())]


def test_projects_keep_the_backlink_format_they_started_with() -> None:
    """Recorded before CHORUS-grammar backlinks: HLC segments; after: `*~<index>`. Both fold."""
    old, new = _records("lifecycle"), _records("backlinks")
    assert old and all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z~\d+", r["ucxl"].split("/")[3]) for r in old)
    assert new and all(r["ucxl"].split("/")[3] == f"*~{r['index']}" for r in new)
    result = fold([run_facts(h) for p in _runs("backlinks") for h in load_history_file(p)])
    assert result.ok and result.transitions == 17, result.problems


def _tampered_copy(tmp_path: Path, name: str, mutate) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path / name
    out.mkdir()
    for p in _runs(name):
        data = json.loads(p.read_text())
        mutate(p.name, data)
        (out / p.name).write_text(json.dumps(data))
    return out


def test_replay_tool_catches_a_tampered_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def drop_a_signal_or_update(name: str, data: dict) -> None:  # type: ignore[type-arg]
        # Remove the first accepted Update's completion: the history no longer matches the code.
        events = data["events"]
        for i, e in enumerate(events):
            if e.get("eventType") in (
                "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED",
                "WorkflowExecutionUpdateCompleted",
            ):
                del events[i]
                return

    folder = _tampered_copy(tmp_path, "quarantine", drop_a_signal_or_update)
    assert main(["replay", str(folder), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is False


def test_audit_accepts_the_records_a_history_produced() -> None:
    histories = [h for p in _runs("snapshots") for h in load_history_file(p)]
    facts = [run_facts(h) for h in histories]
    records = [r for _, r in sorted({i: r for f in facts for i, r in f.records.items()}.items())]
    assert audit(records, histories) == []


def test_audit_reports_a_removed_record_precisely() -> None:
    histories = [h for p in _runs("snapshots") for h in load_history_file(p)]
    records = [r for _, r in sorted({i: r for h in histories for i, r in run_facts(h).records.items()}.items())]
    del records[3]
    problems = audit(records, histories)
    assert problems and "record 3 (index 5)" in problems[0] and "prev_dr_hash" in problems[0]


def test_audit_reports_a_tampered_field_precisely() -> None:
    histories = [h for p in _runs("quarantine") for h in load_history_file(p)]
    records = [r for _, r in sorted({i: r for h in histories for i, r in run_facts(h).records.items()}.items())]
    records[1] = {**records[1], "signer": "hmmm:pubkey:" + "A" * 43}
    problems = audit(records, histories)
    assert problems and problems[0].startswith("chain: record 1 (index 2): dr_hash does not match")


def test_run_facts_reads_the_answers_of_time_skipping_histories() -> None:
    """Their Update completions leave accepted_event_id unset: answers are matched by update id."""
    [run] = load_history_file(HERE / "lifecycle-run0.json")
    facts = run_facts(run)
    assert len(facts.answers) == 17 and facts.answers[0].transition == "Boot_ConfigOk"
