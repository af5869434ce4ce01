"""The determinism walker's mirror: a duplicate answer whose first answer was lost still advances it."""

from __future__ import annotations

import random
import time
from typing import Any

from swoosh.api.client import ProposalFactory, Signers
from swoosh.guards.outcome import GuardOutcome
from swoosh.workflows.answers import Accepted
from swoosh.workflows.document import genesis
from swoosh.workflows.engine import Admitted, Engine, EngineConfig, EngineSnapshot
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.statechart import default_statechart
from swoosh.workflows.testing.walk import Walker


def _server(factory: ProposalFactory) -> Engine:
    doc = genesis(default_statechart(), factory.project_id, factory.signers.keyring())
    return Engine(default_statechart(), EngineSnapshot(document=doc, config=EngineConfig(max_offset_ms=10**12)))


def _apply(server: Engine, body: dict[str, Any]) -> dict[str, Any]:
    admitted = server.admit(ProposalRequest(body=body), 10**15)
    assert isinstance(admitted, Admitted)
    answer, _ = server.apply(admitted, [], 10**15)
    return answer.model_dump(mode="json")


def test_a_duplicate_answer_to_a_proposal_whose_first_answer_was_lost_is_applied() -> None:
    factory = ProposalFactory(Signers.generate(), "walk-1")
    walker = Walker(factory, random.Random(1), None, mistake_rate=0.0)
    server = _server(factory)
    prop = walker.next(int(time.time() * 1000))
    assert prop is not None and prop.transition == "Boot_ConfigOk"
    first = _apply(server, prop.body)  # applied by the server; this answer never reached the caller
    resent = server.admit(ProposalRequest(body=prop.body), 10**15)
    assert isinstance(resent, Accepted) and resent.duplicate
    duplicate = resent.model_dump(mode="json")
    assert duplicate["state_post_hash"] == first["state_post_hash"]
    assert walker.accepted(prop, duplicate, 0) is None
    assert walker.mirror.head_hash == server.head_hash
    # Hearing the duplicate again changes nothing.
    assert walker.accepted(prop, duplicate, 0) is None
    assert walker.mirror.head_hash == server.head_hash


def test_a_lost_first_answer_of_a_guarded_transition_is_applied_from_its_duplicate() -> None:
    """A duplicate answer carries no guard outcomes; the mirror must not read that as 'not evaluated'."""
    factory = ProposalFactory(Signers.generate(), "walk-2")
    walker = Walker(factory, random.Random(2), None, mistake_rate=0.0)
    server = _server(factory)
    now = int(time.time() * 1000)
    boot = walker.next(now)
    assert boot is not None and boot.transition == "Boot_ConfigOk"
    assert walker.accepted(boot, _apply(server, boot.body), 0) is None
    prop = walker.next(now)
    assert prop is not None and prop.transition == "Boot_Licensed"
    admitted = server.admit(ProposalRequest(body=prop.body), 10**15)
    assert isinstance(admitted, Admitted) and admitted.transition.spec.guards == ("license",)
    server.apply(admitted, [GuardOutcome(guard="license", ok=True, reasons=("licence valid",))], 10**15)
    resent = server.admit(ProposalRequest(body=prop.body), 10**15)
    assert isinstance(resent, Accepted) and resent.duplicate and resent.guards == []
    assert walker.accepted(prop, resent.model_dump(mode="json"), 0) is None
    assert walker.mirror.head_hash == server.head_hash
    assert walker.mirror.document["control"]["top"] == "PROJECT_LIFECYCLE"
