"""The committed encrypted history: encrypted on disk, replayed and folded with its key, read after a key
rotation, refused clearly without its key; `swoosh replay` and `swoosh audit verify` read it."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from swoosh.worker.cli import main
from swoosh.workflows.lifecycle import ProjectLifecycle
from swoosh.workflows.lifecycle.codec import EncryptionSettings, PayloadKeyError, new_key_entry
from swoosh.workflows.lifecycle.connection import data_converter
from swoosh.workflows.lifecycle.sandbox import workflow_runner
from swoosh.workflows.replay.audit import audit
from swoosh.workflows.replay.fold import fold
from swoosh.workflows.replay.history import decode_histories, load_history_file, run_facts
from swoosh.workflows.replay.replayer import replay_projects
from tests.histories.record import ENCRYPTED, encryption_of

HERE = Path(__file__).parent
KEY_FILE = ENCRYPTED["encrypted"]
RUNS = sorted(HERE.glob("encrypted-run*.json"))


def _histories() -> list[WorkflowHistory]:
    return [h for p in RUNS for h in load_history_file(p)]


def _encodings(path: Path) -> set[str]:
    out: set[str] = set()

    def walk(o: object, path: str) -> None:
        if isinstance(o, dict):
            meta = o.get("metadata")
            if isinstance(meta, dict) and "encoding" in meta and "indexedFields" not in path and "patch" not in path:
                out.add(f"{path.rsplit('.', 1)[-1]}:{base64.b64decode(meta['encoding']).decode()}")
            for k, v in o.items():
                walk(v, f"{path}.{k}")
        elif isinstance(o, list):
            for v in o:
                walk(v, path)

    walk(json.loads(path.read_text()), "")
    return out


def test_encrypted_history_holds_no_plaintext_payload() -> None:
    assert len(RUNS) >= 2  # continued-as-new: snapshots are encrypted too
    for path in RUNS:
        kinds = {k.split(":")[1] for k in _encodings(path) if not k.startswith("payloads")}
        assert kinds == {"binary/encrypted"}, (path.name, _encodings(path))
        text = path.read_text()
        for plain in (b"Boot_ConfigOk", b"hmmm:pubkey", b"state_post_hash"):
            assert base64.b64encode(plain).decode()[:12] not in text and plain.decode() not in text


async def test_encrypted_history_replays_and_folds_with_its_key() -> None:
    converter = data_converter(encryption_of(KEY_FILE))
    [report] = await replay_projects({"history-encrypted": _histories()}, converter=converter)
    assert report.ok and report.replayed_ok == len(RUNS), report.as_json()
    assert report.fold is not None and report.fold.transitions == 17 and report.fold.snapshot_checks >= 1


async def test_a_rotated_keyring_still_reads_the_old_runs() -> None:
    """New active key first, the old one still listed: old runs replay, new payloads use the new key."""
    old = KEY_FILE.read_text().strip()
    rotated = EncryptionSettings(keys=(SecretStr(new_key_entry("history-next")), SecretStr(old)))
    converter = data_converter(rotated)
    [report] = await replay_projects({"history-encrypted": _histories()}, converter=converter)
    assert report.ok, report.as_json()
    assert converter.payload_codec is not None
    [sealed] = await converter.payload_codec.encode([pydantic_data_converter.payload_converter.to_payload("x")])
    assert sealed.metadata["encryption-key-id"] == b"history-next"


async def test_a_removed_key_fails_clearly() -> None:
    without = data_converter(EncryptionSettings(keys=(SecretStr(new_key_entry("history-next")),)))
    replayer = Replayer(workflows=[ProjectLifecycle], data_converter=without, workflow_runner=workflow_runner())
    result = await replayer.replay_workflow(_histories()[0], raise_on_replay_failure=False)
    assert result.replay_failure is not None  # the workflow task cannot even read its input
    with pytest.raises(PayloadKeyError, match="key id 'history-test', which is not configured"):
        await decode_histories(_histories(), without.payload_codec)
    with pytest.raises(PayloadKeyError, match="payloads are encrypted"):
        run_facts(_histories()[0])  # never read as if it were plaintext


async def test_audit_reads_the_encrypted_history() -> None:
    histories = await decode_histories(_histories(), data_converter(encryption_of(KEY_FILE)).payload_codec)
    facts = [run_facts(h) for h in histories]
    assert fold(facts).ok
    records = [r for _, r in sorted({i: r for f in facts for i, r in f.records.items()}.items())]
    assert len(records) == 17 and audit(records, histories) == []


def test_swoosh_replay_reads_encrypted_histories_with_the_key_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWOOSH_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("SWOOSH_ENCRYPTION_KEYS_FILE", str(KEY_FILE))
    assert main(["replay", *map(str, RUNS), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is True and summary["transitions"] == 17
    monkeypatch.delenv("SWOOSH_ENCRYPTION_KEYS_FILE")
    assert main(["replay", *map(str, RUNS), "--json"]) == 2
    assert "payloads are encrypted" in capsys.readouterr().err
