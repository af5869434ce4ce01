"""Signed receipts end to end on the real dev server: made at each snapshot, signed by the worker's key,
served by `GET /v1/projects/{id}/receipts`, and checked offline by `swoosh audit verify --receipts` with
only the public key — which catches and names a changed record."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from swoosh.api.client._factory import ProposalFactory
from swoosh.worker.cli import main as swoosh
from swoosh.workflows.crypto import signer_id, verify_object
from swoosh.workflows.decision import seal
from swoosh.workflows.merkle import merkle_root
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.receipts import receipt_body
from swoosh.workflows.testing.driver import LIFECYCLE, LOOP
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import HttpDriver

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(240)]


def wait_for_receipts(http: httpx.Client, project: str, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 60
    while True:
        got = http.get(f"/v1/projects/{project}/receipts")
        assert got.status_code == 200, got.text
        receipts: list[dict[str, Any]] = got.json()["receipts"]
        if len(receipts) >= count and all(r["signature"] for r in receipts):
            return receipts
        assert time.monotonic() < deadline, receipts
        time.sleep(0.5)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_receipts_served_signed_and_verified_offline(
    stack: Stack, start_api: ServerFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_api(lifecycle_settings=LifecycleSettings(snapshot_every=4))
    project = f"rc-{uuid.uuid4().hex[:10]}"
    public = signer_id(stack.receipt_key.public_key())
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(f"/v1/projects/{project}").status_code == 201
        HttpDriver(http, ProposalFactory(stack.signers, project), stack.facts).run([*LIFECYCLE, *LOOP])
        receipts = wait_for_receipts(http, project, 4)
        records = http.get(f"/v1/projects/{project}/decisions", params={"limit": 100}).json()["records"]
    assert [(r["from_index"], r["to_index"]) for r in receipts] == [(1, 4), (5, 8), (9, 12), (13, 16)]
    for r in receipts:
        assert set(r) >= {"from_index", "to_index", "merkle_root", "signer", "signature"}
        assert r["signer"] == public and verify_object(public, receipt_body(r), r["signature"])
        covered = [rec["dr_hash"] for rec in records if r["from_index"] <= rec["index"] <= r["to_index"]]
        assert r["merkle_root"] == merkle_root(covered)

    # Offline: only the records, the receipts and the public key (no Temporal, no API).
    key_file = tmp_path / "receipt.pub"
    key_file.write_text(public + "\n")
    rec_file, rct_file = write_jsonl(tmp_path / "records.jsonl", records), write_jsonl(tmp_path / "r.jsonl", receipts)
    common = ["audit", "verify", "--project", project, "--receipts", str(rct_file), "--public-key", str(key_file)]
    assert swoosh([*common, "--records", str(rec_file)]) == 0
    assert "4 signed receipts" in capsys.readouterr().out
    # The sink's own files, found by default, say the same.
    sink = ["audit", "verify", "--project", project, "--sink-dir", str(stack.data_dir / "decisions")]
    assert swoosh([*sink, "--receipts", "--public-key", public, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["receipts_verified"] == 4

    # A record changed in place: named.
    changed = [dict(r) for r in records]
    changed[5]["justification"] = "approved by nobody"  # index 6
    assert swoosh([*common, "--records", str(write_jsonl(tmp_path / "changed.jsonl", changed))]) == 1
    out = capsys.readouterr().out
    assert "record 6: its content differs" in out and "receipt 5..8: merkle root differs" in out

    # A record changed and the chain rehashed from it on: the chain holds, the signed root does not.
    forged = [dict(r) for r in records]
    forged[9]["transition"] = "Council_Eject"  # index 10
    for i in range(9, len(forged)):
        forged[i].pop("dr_hash")
        forged[i]["prev_dr_hash"] = forged[i - 1]["dr_hash"]
        forged[i] = seal(forged[i])
    assert swoosh([*common, "--records", str(write_jsonl(tmp_path / "forged.jsonl", forged)), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == [
        "receipt 9..12: merkle root differs: a record in 9..12 is not the one SWOOSH signed",
        "receipt 13..16: merkle root differs: a record in 13..16 is not the one SWOOSH signed",
    ]


def test_receipts_of_an_unknown_project_is_404(api: Any) -> None:
    assert httpx.get(f"{api.url}/v1/projects/nobody-{uuid.uuid4().hex[:6]}/receipts").status_code == 404
