"""Every contract rejection code, end to end: HTTP 400 with the contract body, and nothing changes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from swoosh.api.client._factory import ProposalFactory
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import sign_bytes
from swoosh.workflows.errors import REJECTION_CODES
from swoosh.workflows.hlc import HLC
from swoosh.workflows.proposal import signing_bytes
from tests.api.conftest import Stack
from tests.api.helpers import head, post, step


def _resign(stack: Stack, factory: ProposalFactory, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    signer = next(n for n in stack.signers.keys if stack.signers.id(n) == body["signer"])
    new = {k: v for k, v in body.items() if k != "signature"} | changes
    new["signature"] = sign_bytes(stack.signers.keys[signer], signing_bytes(new))
    return new


def _body_for(code: str, stack: Stack, http: httpx.Client, factory: ProposalFactory) -> dict[str, Any]:
    """A proposal that the project at its current state must reject with `code`."""
    h = head(http, factory.project_id)
    good = factory.body("Boot_Licensed", h, {"license_id": "LIC-1"})
    if code == "schema":
        return good | {"hlc": "yesterday"}
    if code == "bad_signature":
        return good | {"idem_key": "changed-after-signing"}
    if code == "unauthorized_signer":
        return factory.body("Boot_Licensed", h, {"license_id": "LIC-1"}, signer="ingestion")
    if code == "unknown_transition":
        return factory.body("Boot_Rebooted", h, {})
    if code == "invalid_transition":
        return factory.body("Boot_ConfigOk", h, {})
    if code == "inputs_hash_mismatch":
        return _resign(stack, factory, good, inputs_hash=content_hash({}))
    if code == "stale_state_hash":
        return factory.body("Boot_Licensed", content_hash("an old state"), {"license_id": "LIC-1"})
    if code == "hlc_regression":
        return factory.body("Boot_Licensed", h, {"license_id": "LIC-1"}, hlc="2020-01-01T00:00:00.000+00:00#0")
    if code == "hlc_too_far_ahead":
        future = HLC(factory.clock.now().wall_ms + 3_600_000, 0).format()
        return factory.body("Boot_Licensed", h, {"license_id": "LIC-1"}, hlc=future)
    if code == "guard_failed":
        stack.facts.license_status = "denied"
        return good
    if code == "quarantined":
        step(http, factory, "Policy_Quarantine", {"reason": "investigation"})
        return factory.body("Boot_Licensed", head(http, factory.project_id), {"license_id": "LIC-1"})
    assert code == "terminated"
    step(http, factory, "Boot_LicenseFailed", {"reason": "no licence"})
    return factory.body("Control_Pause", head(http, factory.project_id), {"reason": "x"})


@pytest.mark.parametrize("code", REJECTION_CODES)
def test_rejection_code_is_a_400_with_the_contract_body(
    code: str, stack: Stack, http: httpx.Client, factory: ProposalFactory
) -> None:
    step(http, factory, "Boot_ConfigOk")
    body = _body_for(code, stack, http, factory)
    before = http.get(f"/v1/projects/{factory.project_id}/state").json()
    resp = post(http, factory.project_id, body)
    assert resp.status_code == 400, resp.text
    answer = resp.json()
    assert answer["accepted"] is False
    assert answer["error"] == code
    assert answer["reason"]
    assert answer["head_hash"] == before["hash"]
    assert set(answer) >= {"accepted", "error", "reason", "failing_guard", "guards", "head_hash"}
    assert (answer["success"], answer["state_hash"]) == (False, before["hash"])
    assert answer["quarantined"] is (before["phase"]["top"] == "QUARANTINED")
    if code == "guard_failed":
        assert answer["failing_guard"] == "license"
        assert answer["guards"][0]["guard"] == "license" and answer["guards"][0]["ok"] is False
    after = http.get(f"/v1/projects/{factory.project_id}/state").json()
    assert (after["hash"], after["index"]) == (before["hash"], before["index"]), "a rejection changes nothing"
