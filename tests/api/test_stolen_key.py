"""The stolen-key drill, end to end: the real API, worker and dev server, then the replay kit's audit.

One of three operator keys is stolen. Alone the thief cannot rotate identities (2 of 3 operators
must approve); the two others rotate the stolen key out and a new one in; from the next index on
the stolen key is `unauthorized_signer`, and the audit checks every record against the identities
in force at its index.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.replay import audit, fetch_project_runs, fold, read_records, run_facts
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post

TEAM = {
    "op-1": ("operator", "boot", "policy"),
    "op-2": ("operator",),
    "op-3": ("operator",),
    "op-4": ("operator",),  # the stolen key's successor: not in the keyring the project starts with
    "ingestion": ("ingestion",),
}


def _propose(http: httpx.Client, f: ProposalFactory, transition: str, inputs: dict[str, Any], signer: str) -> Any:
    return post(http, f.project_id, f.body(transition, head(http, f.project_id), inputs, signer=signer))


def test_stolen_key_drill(stack: Stack, start_api: ServerFactory) -> None:
    team = Signers.generate(TEAM)
    starting = Signers(
        {n: k for n, k in team.keys.items() if n != "op-4"}, {n: r for n, r in TEAM.items() if n != "op-4"}
    )
    server = start_api(keyring=starting.keyring())
    pid = f"t-{uuid.uuid4().hex[:12]}"
    f = ProposalFactory(team, pid)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        assert _propose(http, f, "Boot_ConfigOk", {}, "op-1").status_code == 202
        state = http.get(f"/v1/projects/{pid}/state").json()["projection"]

        # The thief holds op-3's key: it works until it is rotated out, but cannot rotate alone.
        grab = f.rotation_inputs(state, add=[{"id": team.id("op-3"), "roles": ["*"]}], approvers=[], proposer="op-3")
        thief = _propose(http, f, "Identity_Rotate", grab, "op-3")
        assert thief.status_code == 400 and thief.json()["error"] == "unauthorized_signer", thief.text
        assert "needs 2 of the 3 operators" in thief.json()["reason"]

        # op-1 proposes, op-2 approves: the stolen key out, its successor in.
        change = {"add": [{"id": team.id("op-4"), "roles": ["operator"]}], "remove": [team.id("op-3")]}
        inputs = f.rotation_inputs(state, **change, reason="op-3's key was stolen", approvers=["op-2"], proposer="op-1")
        rotated = _propose(http, f, "Identity_Rotate", inputs, "op-1")
        assert rotated.status_code == 202, rotated.text
        rotated_at = rotated.json()["index"]

        # From the next index on the stolen key is refused, whatever it proposes; the successor acts.
        refused = _propose(http, f, "Control_Pause", {"reason": "the thief pauses the project"}, "op-3")
        assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_signer"
        assert team.id("op-3") in refused.json()["reason"]
        assert _propose(http, f, "Control_Pause", {"reason": "drill"}, "op-4").status_code == 202
        assert _propose(http, f, "Control_Resume", {"reason": "drill over"}, "op-1").status_code == 202
        final = http.get(f"/v1/projects/{pid}/state").json()
    ids = {i["id"] for i in final["projection"]["boot"]["identities"]}
    assert team.id("op-3") not in ids and team.id("op-4") in ids

    # The replay kit: fold and audit check every record against the identities in force at its index.
    runs = stack.bg.run(_runs(stack, pid))
    folded = fold([run_facts(h) for h in runs], final["hash"])
    assert folded.ok and folded.transitions == final["index"], folded.problems
    records = _delivered(stack, pid, final["index"])
    assert [r["transition"] for r in records][rotated_at - 1] == "Identity_Rotate"
    assert audit(records, runs) == []
    # A record claiming the stolen key signed after the rotation is caught (its chain check aside).
    forged = [dict(r) for r in records]
    forged[-1]["signer"] = team.id("op-3")
    assert any("identities:" in p and "was not an identity" in p for p in audit(forged, runs))


async def _runs(stack: Stack, pid: str) -> Any:
    client = await stack.connect()
    return await fetch_project_runs(client, workflow_id(pid))


def _delivered(stack: Stack, pid: str, index: int) -> list[dict[str, Any]]:
    path = stack.data_dir / "decisions" / f"{pid}.jsonl"
    for _ in range(100):
        records = read_records(path) if path.exists() else []
        if records and records[-1]["index"] == index:
            return records
        time.sleep(0.1)
    raise AssertionError(f"decision records of {pid} not delivered up to index {index}")
