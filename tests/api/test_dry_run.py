"""`POST …/transition?dry_run=true`, end to end on the real dev server: the answer a real send would
get, and nothing changed — head, index, decision records, idempotency memory, and (where no guard has
to run) not even the history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType

from swoosh.api.client import SwooshClient
from swoosh.api.client._factory import ProposalFactory
from swoosh.worker.cli import main as swoosh
from swoosh.worker.keys import write_key
from swoosh.workflows.ids import workflow_id
from tests.api.conftest import ApiServer, Stack
from tests.api.helpers import HttpDriver, post, state

pytestmark = [pytest.mark.temporal, pytest.mark.timeout(180)]


def dry(http: httpx.Client, project: str, body: Any, legacy: bool = False) -> dict[str, Any]:
    if legacy:
        resp = http.post("/transition", params={"dry_run": "true"}, json=body, headers={"X-Project-Id": project})
    else:
        resp = http.post(f"/v1/projects/{project}/transition", params={"dry_run": "true"}, json=body)
    assert resp.status_code == 200, resp.text
    answer: dict[str, Any] = resp.json()
    assert answer["dry_run"] is True
    return answer


def unchanged(http: httpx.Client, project: str) -> tuple[Any, ...]:
    """What a dry run must not touch: head, index, decision records, health counters."""
    now = state(http, project)
    records = http.get(f"/v1/projects/{project}/decisions").json()
    health = http.get(f"/v1/projects/{project}/health").json()
    return now["hash"], now["index"], now["projection"], records, health["undelivered"], health["index"]


def update_names(stack: Stack, project: str) -> list[str]:
    async def fetch() -> list[str]:
        client = await stack.connect()
        history = await client.get_workflow_handle(workflow_id(project)).fetch_history()
        return [
            e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        ]

    return stack.bg.run(fetch())


def test_dry_run_changes_nothing_and_the_same_body_then_applies(
    stack: Stack, http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    d = HttpDriver(http, factory, stack.facts)
    d.step("Boot_ConfigOk")
    body = d.body("Boot_Licensed", {"license_id": "LIC-1"})  # guarded: the licence guard runs
    before = unchanged(http, project)
    first = dry(http, project, body)
    assert first["accepted"] is True and first["duplicate"] is False and first["error"] is None
    assert first["index"] == 2 and first["head_hash"] == before[0]
    assert [(g["guard"], g["ok"]) for g in first["guards"]] == [("license", True)]
    assert dry(http, project, body, legacy=True) == first  # the legacy path, the same answer
    assert unchanged(http, project) == before
    # The same body for real: applied (not a duplicate, so the idempotency memory was untouched),
    # with exactly the post hash the dry run predicted.
    real = post(http, project, body)
    assert real.status_code == 202, real.text
    assert real.json()["duplicate"] is False and real.json()["state_post_hash"] == first["state_post_hash"]
    again = dry(http, project, body)
    assert again["accepted"] is True and again["duplicate"] is True and again["index"] == 2
    # History: the guarded dry runs were Updates (their guards ran in a local activity); the duplicate
    # was answered by the validator and wrote nothing.
    assert update_names(stack, project) == ["transition", "dry_run", "dry_run", "transition"]


def test_dry_run_guard_failure_is_the_real_answer_and_changes_nothing(
    stack: Stack, http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    d = HttpDriver(http, factory, stack.facts)
    d.step("Boot_ConfigOk")
    stack.facts.license_status = "denied"
    body = d.body("Boot_Licensed")
    before = unchanged(http, project)
    answer = dry(http, project, body)
    assert (answer["accepted"], answer["error"], answer["failing_guard"]) == (False, "guard_failed", "license")
    assert answer["state_post_hash"] is None and "licence is denied" in answer["reason"]
    real = post(http, project, body).json()
    assert (real["error"], real["failing_guard"], real["reason"]) == ("guard_failed", "license", answer["reason"])
    assert unchanged(http, project) == before


def test_dry_run_without_guards_writes_no_history(
    stack: Stack, http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    d = HttpDriver(http, factory, stack.facts)
    body = d.body("Boot_ConfigOk")
    answer = dry(http, project, body)
    assert answer["accepted"] is True and answer["index"] == 1 and answer["guards"] == []
    stale = dry(http, project, {**body, "current_state_hash": "sha256-" + "0" * 64})
    assert stale["accepted"] is False and stale["error"] in ("bad_signature", "stale_state_hash")
    assert update_names(stack, project) == []
    assert post(http, project, body).json()["state_post_hash"] == answer["state_post_hash"]


def test_dry_run_secret_is_refused_without_quarantine(
    stack: Stack, http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    d = HttpDriver(http, factory, stack.facts)
    d.run(["Boot_ConfigOk", "Boot_Licensed"])
    before = unchanged(http, project)
    answer = dry(http, project, d.body("Ingestion_SourcesResolved", {"sources": ["-----BEGIN PRIVATE KEY-----"]}))
    assert (answer["accepted"], answer["error"], answer["failing_guard"]) == (False, "guard_failed", "policy")
    assert "would also quarantine" in answer["reason"]
    assert unchanged(http, project) == before
    assert state(http, project)["phase"]["top"] == "PROJECT_LIFECYCLE"
    assert "Ingestion_SourcesResolved" not in str(update_names(stack, project))  # the secret never reached history


def test_dry_run_bad_body_is_a_schema_verdict(http: httpx.Client, project: str) -> None:
    resp = http.post(f"/v1/projects/{project}/transition?dry_run=true", content=b"{not json")
    assert resp.status_code == 200 and resp.json()["error"] == "schema" and resp.json()["accepted"] is False
    resp = http.post(f"/v1/projects/{project}/transition?dry_run=perhaps", content=b"{}")
    assert resp.status_code == 400 and resp.json()["error"] == "schema"
    assert http.post("/v1/projects/no-such-project/transition?dry_run=true", json={}).status_code == 404


def test_dry_run_python_client_and_cli(
    stack: Stack,
    api: ApiServer,
    http: httpx.Client,
    factory: ProposalFactory,
    project: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = factory.signer_for("Boot_ConfigOk")
    with SwooshClient(api.url, project, key=stack.signers.keys[name]) as c:
        verdict = c.dry_run("Boot_ConfigOk")
        assert verdict.accepted and verdict.index == 1
        body = factory.body("Boot_ConfigOk", c.state("meta").hash)
        assert c.state("meta").index == 0
        tried = c.send_dry_run(body)
        assert tried.accepted and post(http, project, body).json()["state_post_hash"] == tried.state_post_hash
    key = tmp_path / "op.key"
    write_key(key, stack.signers.keys[name])
    common = ["--key", str(key), "--api", api.url, "--project", project]
    assert swoosh(["propose", "Boot_ConfigOk", "--dry-run", *common]) == 1  # would be rejected: already taken
    out = json.loads(capsys.readouterr().out)
    assert out["dry_run"] is True and out["error"] == "invalid_transition"
    assert swoosh(["propose", "Boot_Licensed", "--dry-run", *common]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] is True
    assert state(http, project)["index"] == 1


def test_dry_run_loop_of_dry_runs_keeps_the_project_live(
    stack: Stack, http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    """Many guarded dry runs in a row (each an Update) leave the project answering real sends."""
    d = HttpDriver(http, factory, stack.facts)
    d.step("Boot_ConfigOk")
    body = d.body("Boot_Licensed")

    async def many() -> list[int]:
        async with httpx.AsyncClient(base_url=str(http.base_url), timeout=60) as c:
            url = f"/v1/projects/{project}/transition"
            answers = await asyncio.gather(*(c.post(url, params={"dry_run": "1"}, json=body) for _ in range(24)))
            return [a.status_code for a in answers]

    codes = asyncio.run(many())
    assert codes.count(200) + codes.count(429) == 24 and codes.count(200) >= 8
    assert post(http, project, body).status_code == 202
