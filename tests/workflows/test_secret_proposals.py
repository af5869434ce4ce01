"""Secret-bearing proposals never reach history: refused before any Temporal call (client side), by the
Update validator when sent anyway, and the project quarantined with a rationale naming rule and place."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Rejected
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import (
    dry_run,
    ensure_project,
    handle,
    propose,
    read_decisions,
    read_rejections,
    read_state,
    rejected_from,
    signal_proposal,
)
from swoosh.workflows.lifecycle.workflow import ProjectLifecycle
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts

KEY = "sk_live_" + uuid.uuid4().hex[:24]  # api-key rule
PEM = "-----BEGIN PRIVATE KEY-----"  # pem-private-key rule


async def _ready(env: WorkflowEnvironment, tq: str, signers: Signers, factory: ProposalFactory) -> LifecycleDriver:
    await ensure_project(env.client, factory.project_id, signers.keyring(), tq)
    d = LifecycleDriver.for_client(env.client, factory)
    await d.step("Boot_ConfigOk")
    await d.step("Boot_Licensed")
    return d


async def _history_text(env: WorkflowEnvironment, project: str) -> str:
    history = await env.client.get_workflow_handle(workflow_id(project)).fetch_history()
    return json.dumps(history.to_json_dict())


def _assert_absent(text: str, secret: str) -> None:
    assert secret not in text
    raw = secret.encode()
    for shift in range(3):  # the secret inside any base64-encoded payload, at any alignment
        enc = base64.b64encode(b"x" * shift + raw).decode()[4:-4]
        assert enc not in text, (shift, enc)


async def test_secret_proposal_is_never_sent_and_quarantines(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    d = await _ready(tsenv, task_queue, signers, factory)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Ingestion_SourcesResolved", state.hash, {"sources": ["ok", f"token: {KEY}"]})
    answer = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(answer, Rejected) and answer.error == "guard_failed" and answer.failing_guard == "policy"
    assert answer.reason == "breach: api-key (high) at inputs.sources[1]" and answer.quarantined
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "QUARANTINED" and answer.head_hash == state.hash
    rationale = state.projection["policy"]["rationale"]
    assert rationale.startswith("SHHH policy breach: breach: api-key (high) at inputs.sources[1]")
    assert body["idem_key"] in rationale and KEY not in rationale
    # a resend (the caller got no answer) changes nothing: one quarantine only
    again = await propose(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(again, Rejected) and again.error == "quarantined"
    page = await read_decisions(tsenv.client, factory.project_id)
    assert [r["transition"] for r in page.records].count("Policy_Quarantine") == 1
    assert any(e.failing_guard == "policy" for e in await read_rejections(tsenv.client, factory.project_id))
    _assert_absent(await _history_text(tsenv, factory.project_id), KEY)
    del d


async def test_secret_proposal_on_the_signal_path_is_never_signalled(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    await _ready(tsenv, task_queue, signers, factory)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Ingestion_SourcesResolved", state.hash, {"sources": [PEM]}, evidence=[f"ucxl://x/{KEY}"])
    refused = await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert isinstance(refused, Rejected) and refused.failing_guard == "policy"
    assert "pem-private-key (critical) at inputs.sources[0]" in refused.reason
    assert "api-key (high) at evidence[0]" in refused.reason
    state = await read_state(tsenv.client, factory.project_id)
    assert state.phase["top"] == "QUARANTINED" and "pem-private-key" in state.projection["policy"]["rationale"]
    text = await _history_text(tsenv, factory.project_id)
    _assert_absent(text, KEY)
    _assert_absent(text, "BEGIN PRIVATE KEY")


async def test_unsigned_secret_body_quarantines_nothing_and_is_not_sent(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    """No one can quarantine a project with a body they cannot sign: they get the admission's answer."""
    await _ready(tsenv, task_queue, signers, factory)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Ingestion_SourcesResolved", state.hash, {"sources": [KEY]})
    forged = {**body, "signature": body["signature"][::-1]}
    answer = await propose(tsenv.client, factory.project_id, ProposalRequest(body=forged))
    assert isinstance(answer, Rejected) and answer.error == "bad_signature"
    assert (await read_state(tsenv.client, factory.project_id)).phase["top"] != "QUARANTINED"
    verdict = await dry_run(tsenv.client, factory.project_id, ProposalRequest(body=body))
    assert not verdict.accepted and "a real send would also quarantine" in (verdict.reason or "")
    assert (await read_state(tsenv.client, factory.project_id)).phase["top"] != "QUARANTINED"
    _assert_absent(await _history_text(tsenv, factory.project_id), KEY)


async def test_the_update_validator_refuses_a_secret_sent_past_the_client(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    """A caller using Temporal directly: the validator refuses, nothing is written (and so no quarantine)."""
    await _ready(tsenv, task_queue, signers, factory)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Ingestion_SourcesResolved", state.hash, {"sources": [KEY]})
    body_idem = dict(body)
    wf = handle(tsenv.client, factory.project_id)
    try:
        await wf.execute_update(ProjectLifecycle.transition, ProposalRequest(body=body_idem), id="raw-1")
    except WorkflowUpdateFailedError as err:
        rejected = rejected_from(err)
    else:
        raise AssertionError("the validator let a secret through")
    assert rejected is not None and rejected.failing_guard == "policy" and "api-key" in rejected.reason
    _assert_absent(await _history_text(tsenv, factory.project_id), KEY)


async def test_a_raw_signal_with_a_secret_is_refused_and_quarantines(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    """Signalled past the client (Temporal writes it on arrival): the handler still refuses and quarantines."""
    await _ready(tsenv, task_queue, signers, factory)
    state = await read_state(tsenv.client, factory.project_id)
    body = factory.body("Ingestion_SourcesResolved", state.hash, {"sources": [PEM]})
    await handle(tsenv.client, factory.project_id).signal(ProjectLifecycle.propose, ProposalRequest(body=body))
    for _ in range(50):
        state = await read_state(tsenv.client, factory.project_id)
        if state.phase["top"] == "QUARANTINED":
            break
        await tsenv.sleep(0.1)
    assert state.phase["top"] == "QUARANTINED" and "pem-private-key" in state.projection["policy"]["rationale"]


# A real Ed25519 signature (of another message) that the built-in api-key rule matches by chance
# (`-pk-…`): about 1 in 57,000 random signatures does.
LOOKALIKE = "pk-ExAvr8Vu3hv0QJYxFcLFPPWhJ2qxqht0lcdAhtGQrFSqVPiFgH-eZiEhnsSN-F3l0810ofQsxQC-i4-trAQ"


async def test_a_signature_that_looks_like_a_key_is_judged_by_its_guard_not_quarantined(
    tsenv: WorkflowEnvironment, task_queue: str, signers: Signers, factory: ProposalFactory, facts: FakeFacts
) -> None:
    """Signatures are not caller text: on every path (client, validator, Signal handler) the scan skips
    them, so a vote whose signature happens to match a key pattern meets the quorum guard, not SHHH."""
    d = await _ready(tsenv, task_queue, signers, factory)
    await d.step("Council_ProfilesLoaded")
    certificate = factory.quorum_inputs(d.window_id, state=await d.state())
    certificate["votes"][0]["signature"] = LOOKALIKE
    answer = await d.try_step("Council_QuorumCert", certificate)
    assert isinstance(answer, Rejected) and answer.failing_guard == "quorum" and not answer.quarantined, answer
    assert d.head is not None
    signalled = factory.body("Council_QuorumCert", d.head, certificate, window_id=d.window_id)
    assert await signal_proposal(tsenv.client, factory.project_id, ProposalRequest(body=signalled)) is None
    log = []
    for _ in range(100):
        log = await read_rejections(tsenv.client, factory.project_id)
        if log:
            break
        await asyncio.sleep(0.05)
    assert [e.failing_guard for e in log] == ["quorum"]
    after = await read_state(tsenv.client, factory.project_id)
    assert after.phase["top"] != "QUARANTINED" and after.hash == d.head
    await d.step("Council_QuorumCert")  # the genuine certificate still elects
