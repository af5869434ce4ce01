"""The signing gateway's completion and retries, and the WHOOSH-compatible mappings (pure parts)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.server.signing import GatewayKeyError, GatewayKeys, LegacyProposal, SigningGateway, is_legacy_body
from swoosh.api.server.whoosh import BadRequest, NotMappable, council_not_active, map_council, map_task
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import private_key_to_text, signer_id
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Engine, EngineSnapshot
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.keyring import Identity, Keyring
from swoosh.workflows.messages import HeadView
from swoosh.workflows.proposal import ProposalRequest, parse_proposal, verify_signature
from swoosh.workflows.statechart import default_statechart
from tests.unit.helpers import NOW

KEY = Ed25519PrivateKey.generate()
GATEWAY = signer_id(KEY.public_key())


def legacy(**headers: str) -> LegacyProposal:
    fields = {"idem_key": "legacy-1", **headers}
    return LegacyProposal.read({"transition": "Boot_ConfigOk", "inputs": {}}, fields, "demo")


def test_legacy_bodies_are_those_without_swoosh_fields() -> None:
    assert is_legacy_body({"transition": "Boot_ConfigOk"})
    assert is_legacy_body({"transition": "X", "inputs": {}, "evidence": [], "project_id": "p", "idem_key": "k"})
    assert not is_legacy_body({"transition": "X", "signature": "s"})
    assert not is_legacy_body({"transition": "X", "current_state_hash": "h"})


@pytest.mark.parametrize(
    ("body", "fields", "message"),
    [
        ({"transition": "Boot_ConfigOk"}, {}, "Idempotency-Key header is required"),
        ({"inputs": {}}, {"idem_key": "k"}, "transition: field required"),
        ({"transition": "Boot_ConfigOk", "inputs": []}, {"idem_key": "k"}, "inputs must be a JSON object"),
        ({"transition": "Boot_ConfigOk", "evidence": [1]}, {"idem_key": "k"}, "evidence"),
        ({"transition": "Boot_ConfigOk", "inputs": {"x": 1.5}}, {"idem_key": "k"}, "float"),
        ({"transition": "Boot_ConfigOk", "idem_key": "a"}, {"idem_key": "b"}, "different values"),
    ],
)
def test_malformed_legacy_bodies_are_schema_rejections(
    body: dict[str, Any], fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ProposalError, match=message) as err:
        LegacyProposal.read(body, fields, "demo")
    assert err.value.code == "schema"


def test_a_completed_legacy_body_is_a_valid_proposal_signed_as_the_gateway_identity() -> None:
    gateway = SigningGateway(GatewayKeys([KEY]))
    delegation = gateway.delegation(GATEWAY, "ci-bot")
    assert delegation is not None and gateway.delegation("hmmm:pubkey:" + "A" * 43, "x") is None
    request = legacy(hlc="2025-10-09T08:53:20.000+00:00#3", window_id="backbeat:W-1").sign(
        delegation, content_hash({}), "unused"
    )
    proposal = parse_proposal(request)
    assert proposal.signer == GATEWAY and proposal.inputs_hash == content_hash({}) and proposal.hlc.endswith("#3")
    assert verify_signature(request, proposal) and request.gateway_token == "ci-bot"


def test_the_gateway_token_is_named_in_the_decision_record() -> None:
    keyring = Keyring(signers=(Identity(id=GATEWAY, roles=("operator",)),))
    engine = Engine(default_statechart(), EngineSnapshot(document=genesis(default_statechart(), "demo", keyring)))
    delegation = SigningGateway(GatewayKeys([KEY])).delegation(GATEWAY, "ci-bot")
    assert delegation is not None
    request = legacy().sign(delegation, engine.head_hash, "2025-10-09T08:53:20.000+00:00#0")
    admitted = engine.admit(request, NOW)
    assert not isinstance(admitted, Accepted)
    _, record = engine.apply(admitted, [], NOW)
    assert record["signer"] == GATEWAY
    assert "signed by SWOOSH's signing gateway for API token ci-bot" in record["justification"]


async def test_a_stale_head_is_completed_again_and_resent_within_bounds() -> None:
    gateway = SigningGateway(GatewayKeys([KEY]), attempts=3)
    delegation = gateway.delegation(GATEWAY, "t")
    assert delegation is not None
    heads = ["sha256-" + "1" * 64, "sha256-" + "2" * 64, "sha256-" + "3" * 64]
    sent: list[str] = []

    async def send(req: ProposalRequest) -> Accepted | Rejected:
        sent.append(req.body["current_state_hash"])
        if len(sent) < 3:
            return Rejected(error="stale_state_hash", reason="moved", head_hash=heads[len(sent)])
        return Accepted(
            project_id="demo",
            transition="Boot_ConfigOk",
            index=3,
            state_pre_hash=heads[2],
            state_post_hash="sha256-" + "4" * 64,
            hlc="2025-10-09T08:53:20.000+00:00#0",
            idem_key="legacy-1",
            decision_record=None,
            dr_hash="sha256-" + "5" * 64,
        )

    async def head() -> HeadView:
        return HeadView(project_id="demo", hash=heads[0], index=1, hlc_last=None, top="UNINITIALIZED")

    answer = await gateway.propose(legacy(), delegation, send, head)
    assert isinstance(answer, Accepted) and sent == heads
    # the head is remembered from the answer: the next completion needs no read
    sent.clear()
    await gateway.propose(legacy(), delegation, send, head)
    assert sent[0] == "sha256-" + "4" * 64


async def test_a_head_that_keeps_moving_gives_the_last_answer() -> None:
    gateway = SigningGateway(GatewayKeys([KEY]), attempts=2)
    delegation = gateway.delegation(GATEWAY, "t")
    assert delegation is not None
    calls = 0

    async def send(req: ProposalRequest) -> Accepted | Rejected:
        nonlocal calls
        calls += 1
        return Rejected(error="stale_state_hash", reason="moved", head_hash="sha256-" + str(calls) * 64)

    async def head() -> HeadView:
        return HeadView(project_id="demo", hash="sha256-" + "0" * 64, index=1, hlc_last=None, top="UNINITIALIZED")

    answer = await gateway.propose(legacy(), delegation, send, head)
    assert isinstance(answer, Rejected) and answer.error == "stale_state_hash" and calls == 2


def test_gateway_keys_load_from_text_and_files_and_name_bad_entries_without_the_key(tmp_path: Any) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# gateway identities\n{private_key_to_text(KEY)}\n", encoding="utf-8")
    assert GatewayKeys.load(key_file=path).signers == [GATEWAY]
    with pytest.raises(GatewayKeyError, match="gateway key 1 is not") as err:
        GatewayKeys.load(["not-a-key-at-all"])
    assert "not-a-key-at-all" not in str(err.value)
    with pytest.raises(GatewayKeyError, match="cannot read"):
        GatewayKeys.load(key_file=tmp_path / "missing")


# ---------------------------------------------------------------------- WHOOSH-compatible mappings
OPPORTUNITY = {
    "council_id": "c-8f14e45f",
    "project_name": "ledger-service",
    "repository": "https://git.example/ledger.git",
    "project_brief": "Build the ledger",
    "core_roles": [
        {"role_name": "architect", "agent_name": "a1", "required": True, "required_skills": ["go"], "description": "d"},
        {"role_name": "developer", "agent_name": "a2", "required": True, "required_skills": [], "description": ""},
    ],
    "optional_roles": [
        {"role_name": "reviewer", "agent_name": None, "required": False, "required_skills": [], "description": ""}
    ],
    "ucxl_address": "ucxl://whoosh:council@ledger-service:formation/*^/brief",
    "formation_deadline": "2025-10-20T00:00:00Z",
    "created_at": "2025-10-19T00:00:00Z",
    "metadata": {"source": "whoosh"},
}


def test_a_council_opportunity_maps_to_profiles_loaded_of_its_council() -> None:
    mapped = map_council(OPPORTUNITY)
    assert (mapped.project_id, mapped.transition) == ("c-8f14e45f", "Council_ProfilesLoaded")
    assert mapped.inputs == {"roles": ["architect", "developer", "reviewer"]}
    assert mapped.evidence == [OPPORTUNITY["ucxl_address"]]
    assert mapped.derived_idem_key == map_council(dict(OPPORTUNITY)).derived_idem_key  # deterministic
    assert mapped.derived_idem_key != map_council({**OPPORTUNITY, "project_brief": "other"}).derived_idem_key


def test_an_opportunity_without_roles_is_not_mappable_and_says_what_would_be() -> None:
    with pytest.raises(NotMappable, match="needs at least one role"):
        map_council({**OPPORTUNITY, "core_roles": [], "optional_roles": []})


@pytest.mark.parametrize(
    ("change", "message"), [({"council_id": "a/b"}, "project id"), ({"council_id": 5}, "council_id")]
)
def test_a_malformed_opportunity_is_a_bad_request(change: dict[str, Any], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        map_council({**OPPORTUNITY, **change})


def test_the_501_reason_for_an_inactive_council_says_what_to_do() -> None:
    reason = council_not_active("p", {"top": "UNINITIALIZED", "council": None}).reason
    assert "Boot_ConfigOk, then Boot_Licensed" in reason
    assert "Council_QuorumCert" in council_not_active("p", {"top": "PROJECT_LIFECYCLE", "council": "ELECT"}).reason


def test_a_task_whose_type_names_a_transition_maps_to_it_with_its_context_as_inputs() -> None:
    mapped = map_task({"type": "control_pause", "priority": 2, "context": {"reason": "upgrade"}}, "demo")
    assert (mapped.transition, mapped.inputs, mapped.project_id) == ("Control_Pause", {"reason": "upgrade"}, "demo")


@pytest.mark.parametrize(
    ("task", "message"),
    [
        ({"type": "Council"}, "names a region with 4 transitions"),
        ({"type": "code_generation"}, "maps to no transition"),
        ({"type": "License_GraceExpired"}, "maps to no transition"),  # SWOOSH's own, never a caller's
    ],
)
def test_tasks_that_map_to_no_single_transition_are_not_mappable(task: dict[str, Any], message: str) -> None:
    with pytest.raises(NotMappable, match=message):
        map_task(task, "demo")


@pytest.mark.parametrize("task", [{"type": "Control_Pause", "priority": 9}, {"priority": 1}, {"type": "x", "extra": 1}])
def test_malformed_tasks_are_bad_requests(task: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        map_task(task, "demo")
