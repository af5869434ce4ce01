"""Every contract rejection code, answered by the real workflow, changing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.errors import REJECTION_CODES
from swoosh.workflows.hlc import HLC
from swoosh.workflows.lifecycle.client import ensure_project, propose, read_head
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts


async def _ready(
    tsenv: WorkflowEnvironment, tq: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> LifecycleDriver:
    await ensure_project(tsenv.client, factory.project_id, signers.keyring(), tq)
    d = LifecycleDriver.for_client(tsenv.client, factory, open_window=facts.open_window)
    await d.step("Boot_ConfigOk")
    return d


async def _reject(tsenv: WorkflowEnvironment, project: str, body: dict[str, Any], **headers: str) -> Rejected:
    before = await read_head(tsenv.client, project)
    answer = await propose(tsenv.client, project, ProposalRequest(body=body, header_fields=headers))
    assert isinstance(answer, Rejected), answer
    after = await read_head(tsenv.client, project)
    assert (after.hash, after.index) == (before.hash, before.index), "a rejection must change nothing"
    assert answer.head_hash == before.hash
    return answer


def _tamper(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


CASES = list(REJECTION_CODES)  # every contract code, from the one list the code itself uses


@pytest.mark.parametrize("code", CASES)
async def test_rejection_code_is_answered_and_changes_nothing(
    code: str, tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _ready(tsenv, task_queue, signers, factory, facts)
    head = d.head
    assert head is not None
    pid = factory.project_id
    good = factory.body("Boot_Licensed", head, {})
    if code == "schema":
        r = await _reject(tsenv, pid, _tamper(good, hlc="yesterday"))
    elif code == "bad_signature":
        r = await _reject(tsenv, pid, _tamper(good, idem_key="changed-after-signing"))
    elif code == "unauthorized_signer":
        r = await _reject(tsenv, pid, factory.body("Boot_Licensed", head, {}, signer="ingestion"))
    elif code == "unknown_transition":
        r = await _reject(tsenv, pid, factory.body("Boot_Rebooted", head, {}))
    elif code == "invalid_transition":
        r = await _reject(tsenv, pid, factory.body("Boot_ConfigOk", head, {}))
    elif code == "inputs_hash_mismatch":
        body = factory.body("Boot_Licensed", head, {})
        body = factory.body("Boot_Licensed", head, {"license_id": "X"}, idem_key=body["idem_key"])
        from swoosh.workflows.crypto import sign_bytes
        from swoosh.workflows.proposal import signing_bytes

        body = {k: v for k, v in body.items() if k != "signature"}
        body["inputs_hash"] = content_hash({})
        body["signature"] = sign_bytes(signers.keys[factory.signer_for("Boot_Licensed")], signing_bytes(body))
        r = await _reject(tsenv, pid, body)
    elif code == "stale_state_hash":
        r = await _reject(tsenv, pid, factory.body("Boot_Licensed", content_hash("old"), {}))
    elif code == "hlc_regression":
        r = await _reject(tsenv, pid, factory.body("Boot_Licensed", head, {}, hlc="2020-01-01T00:00:00.000+00:00#0"))
    elif code == "hlc_too_far_ahead":
        future = HLC(factory.clock.now().wall_ms + 3_600_000, 0).format()
        r = await _reject(tsenv, pid, factory.body("Boot_Licensed", head, {}, hlc=future))
    elif code == "guard_failed":
        facts.license_status = "denied"
        r = await _reject(tsenv, pid, good)
        assert r.failing_guard == "license"
        assert r.guards and r.guards[0].guard == "license" and not r.guards[0].ok
    elif code == "quarantined":
        await d.step("Policy_Quarantine", {"reason": "investigation"})
        r = await _reject(tsenv, pid, factory.body("Boot_Licensed", d.head or "", {}))
    else:
        await d.step("Boot_LicenseFailed", {"reason": "no licence"})
        r = await _reject(tsenv, pid, factory.body("Control_Pause", d.head or "", {"reason": "x"}))
    assert r.error == code, r
    assert r.reason


async def test_rejection_header_fields_fill_and_must_agree(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _ready(tsenv, task_queue, signers, factory, facts)
    body = factory.body("Boot_Licensed", d.head or "", {})
    r = await _reject(tsenv, factory.project_id, body, idem_key="something-else")
    assert r.error == "schema" and "idem_key" in r.reason
