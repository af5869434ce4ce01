"""The signing gateway and WHOOSH-compatible endpoints over HTTP: unchanged legacy callers, council opportunities."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from swoosh.api.client import HLCClock
from swoosh.api.server.signing import GatewayKeys
from swoosh.api.server.tokens import ApiToken
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.keyring import Identity, Keyring
from tests.api.conftest import ServerFactory, Stack

GATEWAY_KEY = Ed25519PrivateKey.generate()
GATEWAY = signer_id(GATEWAY_KEY.public_key())
NARROW_KEY = Ed25519PrivateKey.generate()  # a gateway identity that may only act for the council
NARROW = signer_id(NARROW_KEY.public_key())
CLOCK = HLCClock()  # the legacy callers' own HLC
WHOOSH, PLAIN, COUNCIL_ONLY, ADMIN = "whoosh-secret", "plain-secret", "council-secret", "admin-secret"

OPPORTUNITY = {
    "council_id": "",
    "project_name": "ledger-service",
    "repository": "https://git.example/ledger.git",
    "project_brief": "Build the ledger service",
    "core_roles": [
        {
            "role_name": "architect",
            "agent_name": "arch-1",
            "required": True,
            "required_skills": ["go"],
            "description": "",
        },
        {"role_name": "developer", "agent_name": "dev-1", "required": True, "required_skills": [], "description": ""},
    ],
    "optional_roles": [
        {"role_name": "reviewer", "agent_name": None, "required": False, "required_skills": [], "description": ""}
    ],
    "ucxl_address": "ucxl://whoosh:council@ledger-service:formation/*^/brief",
    "formation_deadline": "2025-10-20T00:00:00Z",
    "created_at": "2025-10-19T00:00:00Z",
    "metadata": {"source": "whoosh"},
}


@pytest.fixture
def gw(stack: Stack, start_api: ServerFactory) -> Iterator[httpx.Client]:
    keyring = Keyring(
        signers=(
            *stack.signers.keyring().signers,
            Identity(id=GATEWAY, roles=("operator", "boot", "council", "tooling", "ingestion", "execution")),
            Identity(id=NARROW, roles=("council",)),
        )
    )
    tokens = [
        ApiToken(label="admin", secret=SecretStr(ADMIN)),
        ApiToken(label="whoosh-callers", secret=SecretStr(WHOOSH), scopes=("read", "propose"), gateway=GATEWAY),
        ApiToken(label="council-bot", secret=SecretStr(COUNCIL_ONLY), scopes=("read", "propose"), gateway=NARROW),
        ApiToken(label="plain", secret=SecretStr(PLAIN), scopes=("read", "propose")),
    ]
    server = start_api(keyring=keyring, tokens=tokens, gateway_keys=GatewayKeys([GATEWAY_KEY, NARROW_KEY]))
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_project(http: httpx.Client) -> str:
    pid = f"g-{uuid.uuid4().hex[:12]}"
    assert http.put(f"/v1/projects/{pid}", headers=auth(ADMIN)).status_code == 201
    return pid


def legacy_headers(token: str, project: str, key: str | None = None, **more: str) -> dict[str, str]:
    return {
        **auth(token),
        "Idempotency-Key": key or f"whoosh-{uuid.uuid4().hex}",
        "X-HLC": CLOCK.now().format(),
        "X-Window-Id": "backbeat:W-1",
        "X-Project-Id": project,
        **more,
    }


def records(http: httpx.Client, project: str) -> list[dict[str, Any]]:
    return list(http.get(f"/v1/projects/{project}/decisions", headers=auth(ADMIN)).json()["records"])


def test_an_unchanged_legacy_caller_gets_202_and_its_record_is_signed_by_the_gateway_identity(gw: httpx.Client) -> None:
    pid = new_project(gw)
    headers = legacy_headers(WHOOSH, pid)
    resp = gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=headers)
    assert resp.status_code == 202, resp.text
    answer = resp.json()
    assert (
        answer["success"] is True and answer["duplicate"] is False and answer["idem_key"] == headers["Idempotency-Key"]
    )
    record = records(gw, pid)[-1]
    assert record["signer"] == GATEWAY and record["idem_key"] == headers["Idempotency-Key"]
    assert "signed by SWOOSH's signing gateway for API token whoosh-callers" in record["justification"]
    again = gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=headers)  # a resend
    assert again.status_code == 202 and again.json()["duplicate"] is True
    assert len(records(gw, pid)) == 1


def test_the_gateway_completes_against_a_head_that_moved(gw: httpx.Client, stack: Stack) -> None:
    pid = new_project(gw)
    gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=legacy_headers(WHOOSH, pid))
    # Another caller moves the head between the gateway's answers: its remembered head is stale now.
    from swoosh.api.client._factory import ProposalFactory

    f = ProposalFactory(stack.signers, pid, clock=CLOCK)
    head = gw.get(f"/v1/projects/{pid}/state", headers=auth(ADMIN)).json()
    body = f.body("Boot_Licensed", head["hash"], {"license_id": "LIC-1"})
    assert gw.post(f"/v1/projects/{pid}/transition", json=body, headers=auth(ADMIN)).status_code == 202
    resp = gw.post(
        "/transition",
        json={"transition": "Control_Pause", "inputs": {"reason": "maintenance"}},
        headers=legacy_headers(WHOOSH, pid),
    )
    assert resp.status_code == 202, resp.text
    assert [r["signer"] for r in records(gw, pid)] == [GATEWAY, body["signer"], GATEWAY]


def test_without_a_gateway_binding_nothing_changes(gw: httpx.Client) -> None:
    pid = new_project(gw)
    resp = gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=legacy_headers(PLAIN, pid))
    assert resp.status_code == 400 and resp.json()["error"] == "schema"
    assert "current_state_hash" in resp.json()["reason"]
    assert records(gw, pid) == []


def test_the_gateway_signs_only_within_its_identitys_roles(gw: httpx.Client) -> None:
    pid = new_project(gw)
    resp = gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=legacy_headers(COUNCIL_ONLY, pid))
    assert resp.status_code == 400 and resp.json()["error"] == "unauthorized_signer", resp.text
    assert "operator, boot" in resp.json()["reason"]


def test_a_legacy_body_needs_the_idempotency_key(gw: httpx.Client) -> None:
    pid = new_project(gw)
    headers = legacy_headers(WHOOSH, pid)
    del headers["Idempotency-Key"]
    resp = gw.post("/transition", json={"transition": "Boot_ConfigOk"}, headers=headers)
    assert resp.status_code == 400 and "Idempotency-Key" in resp.json()["reason"]


def test_a_council_opportunity_on_a_new_council_is_501_with_what_would_map(gw: httpx.Client) -> None:
    council = f"c-{uuid.uuid4().hex[:12]}"
    resp = gw.post("/api/v1/opportunities/council", json={**OPPORTUNITY, "council_id": council}, headers=auth(WHOOSH))
    assert resp.status_code == 501, resp.text
    assert resp.json()["error"] == "not_mappable"
    assert "Boot_ConfigOk, then Boot_Licensed" in resp.json()["reason"]
    # "creates or finds the project named by council_id"
    assert gw.get(f"/v1/projects/{council}/state", headers=auth(ADMIN)).status_code == 200


def test_a_council_opportunity_on_a_booted_project_is_applied_once(gw: httpx.Client) -> None:
    council = new_project(gw)
    for transition, inputs in (("Boot_ConfigOk", {}), ("Boot_Licensed", {"license_id": "LIC-1"})):
        r = gw.post(
            "/transition", json={"transition": transition, "inputs": inputs}, headers=legacy_headers(WHOOSH, council)
        )
        assert r.status_code == 202, r.text
    opportunity = {**OPPORTUNITY, "council_id": council}
    resp = gw.post("/api/v1/opportunities/council", json=opportunity, headers=auth(WHOOSH))
    assert resp.status_code == 202, resp.text
    assert resp.json()["transition"] == "Council_ProfilesLoaded"
    state = gw.get(f"/v1/projects/{council}/state", headers=auth(ADMIN)).json()
    assert state["phase"]["council"] == "ELECT"
    assert state["projection"]["council"]["roles"] == ["architect", "developer", "reviewer"]
    assert records(gw, council)[-1]["evidence"] == [OPPORTUNITY["ucxl_address"]]
    again = gw.post("/api/v1/opportunities/council", json=opportunity, headers=auth(WHOOSH))
    assert again.status_code == 202 and again.json()["duplicate"] is True  # the same opportunity: the same key


def test_council_opportunities_without_roles_or_malformed_are_answered_clearly(gw: httpx.Client) -> None:
    no_roles = {**OPPORTUNITY, "council_id": "c-x", "core_roles": [], "optional_roles": []}
    r = gw.post("/api/v1/opportunities/council", json=no_roles, headers=auth(WHOOSH))
    assert r.status_code == 501 and "at least one role" in r.json()["reason"]
    r = gw.post("/api/v1/opportunities/council", json={"council_id": "bad/id"}, headers=auth(WHOOSH))
    assert r.status_code == 400 and r.json()["error"] == "schema"
    r = gw.post("/api/v1/opportunities/council", json={**OPPORTUNITY, "council_id": "c-y"}, headers=auth(PLAIN))
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_signer"


def test_a_task_maps_to_the_transition_its_type_names(gw: httpx.Client) -> None:
    pid = new_project(gw)
    headers = legacy_headers(WHOOSH, pid)
    r = gw.post("/api/v1/tasks", json={"type": "boot_configok", "priority": 2, "context": {}}, headers=headers)
    assert r.status_code == 202 and r.json()["transition"] == "Boot_ConfigOk", r.text
    r = gw.post("/api/v1/tasks", json={"type": "code_generation", "priority": 3}, headers=legacy_headers(WHOOSH, pid))
    assert r.status_code == 501 and "a task maps when its type names a transition" in r.json()["reason"]
    r = gw.post("/api/v1/tasks", json={"type": "Council"}, headers=legacy_headers(WHOOSH, pid))
    assert r.status_code == 501 and "names a region" in r.json()["reason"]
    r = gw.post("/api/v1/tasks", json={"type": "Control_Pause", "priority": 9}, headers=legacy_headers(WHOOSH, pid))
    assert r.status_code == 400 and r.json()["error"] == "schema"
