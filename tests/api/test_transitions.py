"""Accepted proposals over HTTP: 202 answers, duplicates, reads, legacy paths and headers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.crypto import sign_bytes
from swoosh.workflows.decision import verify_chain
from swoosh.workflows.messages import LifecycleSettings
from swoosh.workflows.proposal import build_body, signing_bytes
from tests.api.conftest import ServerFactory, Stack
from tests.api.helpers import head, post, step

ANSWER_FIELDS = {
    "accepted",
    "duplicate",
    "project_id",
    "transition",
    "index",
    "state_pre_hash",
    "state_post_hash",
    "hlc",
    "decision_record",
    "guards",
    "success",
    "state_hash",
    "quarantined",
}


def test_transition_accepted_is_visible_in_state_and_decisions(http: httpx.Client, factory: ProposalFactory) -> None:
    pid = factory.project_id
    before = head(http, pid)
    resp = post(http, pid, factory.body("Boot_ConfigOk", before, {}))
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert set(answer) >= ANSWER_FIELDS
    assert answer["accepted"] is True and answer["duplicate"] is False
    assert (answer["success"], answer["state_hash"], answer["quarantined"]) == (True, answer["state_post_hash"], False)
    assert (answer["index"], answer["state_pre_hash"], answer["transition"]) == (1, before, "Boot_ConfigOk")
    state = http.get(f"/v1/projects/{pid}/state").json()
    assert state["hash"] == answer["state_post_hash"] and state["index"] == 1
    assert state["phase"]["top"] == "LICENSE_CHECK"
    assert state["hlc_last"] == answer["hlc"]
    records = http.get(f"/v1/projects/{pid}/decisions").json()
    assert [r["index"] for r in records["records"]] == [1]
    assert records["records"][0]["dr_hash"] == answer["decision_record"]["dr_hash"]
    assert records["head_index"] == 1 and records["next_after_index"] == 1


def test_transition_resent_is_a_duplicate_with_the_original_answer(
    http: httpx.Client, factory: ProposalFactory
) -> None:
    body = factory.body("Boot_ConfigOk", head(http, factory.project_id), {})
    first = post(http, factory.project_id, body).json()
    again = post(http, factory.project_id, body)
    assert again.status_code == 202
    dup = again.json()
    assert dup["duplicate"] is True
    assert (dup["index"], dup["state_post_hash"]) == (first["index"], first["state_post_hash"])
    assert http.get(f"/v1/projects/{factory.project_id}/state").json()["index"] == 1


def _unaddressed(
    stack: Stack, factory: ProposalFactory, transition: str, current: str, **fields: str
) -> dict[str, Any]:
    """A body signed without project_id (and without any field named in `fields`' keys set to '')."""
    key = stack.signers.keys[factory.signer_for(transition)]
    body = build_body(
        key,
        transition=transition,
        current_state_hash=current,
        idem_key=f"goal:1:{transition}:{uuid.uuid4().hex}",
        hlc=factory.clock.now().format(),
    )
    bare = {k: v for k, v in body.items() if k != "signature" and k not in fields}
    bare["signature"] = sign_bytes(key, signing_bytes(bare))
    return bare


def test_transition_legacy_path_uses_x_project_id(stack: Stack, http: httpx.Client, factory: ProposalFactory) -> None:
    body = _unaddressed(stack, factory, "Boot_ConfigOk", head(http, factory.project_id))
    resp = http.post("/transition", json=body, headers={"X-Project-Id": factory.project_id})
    assert resp.status_code == 202, resp.text
    assert resp.json()["project_id"] == factory.project_id
    assert http.get("/state", params={"project_id": factory.project_id}).json()["index"] == 1
    assert http.get("/state", headers={"X-Project-Id": factory.project_id}).json()["index"] == 1


def test_transition_legacy_path_without_project_goes_to_the_default_project(stack: Stack, http: httpx.Client) -> None:
    deadline = time.monotonic() + 20
    while http.get("/state").status_code != 200:  # created in the background on API start
        assert time.monotonic() < deadline
        time.sleep(0.1)
    view = http.get("/state").json()
    assert view["project_id"] == "default"
    factory = ProposalFactory(stack.signers, "default")
    body = _unaddressed(stack, factory, "Boot_ConfigOk", view["hash"])
    resp = http.post("/transition", json=body)
    assert resp.status_code in (202, 400), resp.text
    if resp.status_code == 400:  # the session's default project already booted (a re-run)
        assert resp.json()["error"] == "invalid_transition"
    assert http.get("/state").json()["index"] >= 1
    assert http.get("/health").json()["status"] in ("ok", "degraded")


def test_transition_body_signed_with_project_id_then_stripped_is_bad_signature(
    http: httpx.Client, factory: ProposalFactory
) -> None:
    body = factory.body("Boot_ConfigOk", head(http, factory.project_id), {})
    del body["project_id"]  # the signature covers the body as sent
    resp = http.post("/transition", json=body, headers={"X-Project-Id": factory.project_id})
    assert resp.status_code == 400 and resp.json()["error"] == "bad_signature"


def test_transition_legacy_headers_fill_absent_fields(
    stack: Stack, http: httpx.Client, factory: ProposalFactory
) -> None:
    pid = factory.project_id
    idem = f"goal:1:boot:{uuid.uuid4().hex}"
    hlc = factory.clock.now().format()
    bare = _unaddressed(stack, factory, "Boot_ConfigOk", head(http, pid), idem_key="", hlc="")
    headers = {"Idempotency-Key": idem, "X-HLC": hlc, "X-Window-Id": "backbeat:W-9", "X-Project-Id": pid}
    resp = http.post("/transition", json=bare, headers=headers)
    assert resp.status_code == 202, resp.text
    record = resp.json()["decision_record"]
    assert (record["idem_key"], record["hlc"], record["window_id"]) == (idem, hlc, "backbeat:W-9")
    again = http.post("/transition", json=bare, headers=headers)
    assert again.status_code == 202 and again.json()["duplicate"] is True


def test_transition_legacy_header_conflicting_with_body_is_schema(http: httpx.Client, factory: ProposalFactory) -> None:
    body = factory.body("Boot_ConfigOk", head(http, factory.project_id), {})
    resp = post(http, factory.project_id, body, **{"Idempotency-Key": "something-else"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "schema" and "idem_key" in resp.json()["reason"]
    agreeing = post(http, factory.project_id, body, **{"Idempotency-Key": body["idem_key"], "X-HLC": body["hlc"]})
    assert agreeing.status_code == 202, agreeing.text


def test_transition_body_project_differs_from_path_is_schema(
    http: httpx.Client, factory: ProposalFactory, project: str
) -> None:
    other = f"t-{uuid.uuid4().hex[:12]}"
    assert http.put(f"/v1/projects/{other}").status_code == 201
    body = factory.body("Boot_ConfigOk", head(http, project), {})
    resp = post(http, other, body)
    assert resp.status_code == 400 and resp.json()["error"] == "schema"
    assert resp.json()["head_hash"] == head(http, other)


def test_project_put_is_idempotent(http: httpx.Client, project: str) -> None:
    again = http.put(f"/v1/projects/{project}")
    assert again.status_code == 200
    assert again.json() == {"project_id": project, "workflow_id": f"swoosh-project-{project}", "created": False}


def test_state_projection_is_case_insensitive(http: httpx.Client, project: str) -> None:
    full = http.get(f"/v1/projects/{project}/state").json()
    proj = http.get(f"/v1/projects/{project}/state", params={"projection": "Council,INGESTION"}).json()
    assert set(proj["projection"]) == {"council", "ingestion"}
    assert proj["hash"] == full["hash"]
    assert proj["projection"]["council"] == full["projection"]["council"]
    assert set(full["projection"]) == {
        "meta", "boot", "ingestion", "council", "environment", "execution", "control", "policy", "epoch", "hlc_last"
    }  # fmt: skip
    assert set(full["phase"]) == {"top", "boot", "ingestion", "council", "environment", "execution", "license"}


def test_state_unknown_projection_is_schema_with_head(http: httpx.Client, project: str) -> None:
    resp = http.get(f"/v1/projects/{project}/state", params={"projection": "Council,Nonsense"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "schema" and "nonsense" in resp.json()["reason"]
    assert resp.json()["head_hash"] == head(http, project)
    legacy = http.get("/state", params={"project_id": project, "projection": "bogus"})
    assert legacy.status_code == 400 and legacy.json()["error"] == "schema"


def test_health_of_a_project(http: httpx.Client, project: str) -> None:
    health = http.get(f"/v1/projects/{project}/health").json()
    assert health["status"] == "ok" and health["walLag"] == 0
    assert {"consensus", "lastSnapshotHLC"} <= set(health)
    assert http.get("/health", params={"project_id": project}).json()["consensus"]["workflow_id"].endswith(project)


def test_decisions_older_than_the_retained_ones_come_from_the_sink(stack: Stack, start_api: ServerFactory) -> None:
    server = start_api(lifecycle_settings=LifecycleSettings(dr_retain=2, dr_flush_ms=0))
    pid = f"t-{uuid.uuid4().hex[:12]}"
    factory = ProposalFactory(stack.signers, pid)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.put(f"/v1/projects/{pid}").status_code == 201
        step(http, factory, "Boot_ConfigOk")
        step(http, factory, "Control_Pause", {"reason": "a"})
        step(http, factory, "Control_Resume", {"reason": "b"})
        step(http, factory, "Control_Pause", {"reason": "c"})
        deadline = time.monotonic() + 20
        while http.get(f"/v1/projects/{pid}/health").json()["delivered_index"] < 4:
            assert time.monotonic() < deadline, "decision records were not delivered"
            time.sleep(0.1)
        page = http.get(f"/v1/projects/{pid}/decisions").json()
        assert page["first_retained_index"] == 3
        assert [r["index"] for r in page["records"]] == [1, 2, 3, 4]
        assert verify_chain(page["records"]) is None
        second = http.get(f"/v1/projects/{pid}/decisions", params={"after_index": 1, "limit": 2}).json()
        assert [r["index"] for r in second["records"]] == [2, 3] and second["next_after_index"] == 3
