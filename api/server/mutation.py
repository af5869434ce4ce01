"""A mutation as the migration router sees it, and the answers it gives for one.

Whatever endpoint a mutation came through (a transition body, a WHOOSH-compatible request), the router
handles a `Mutation` and answers an `Answer`: SWOOSH's outcome or the legacy system's answer, relayed,
with `X-Swoosh-Decided-By` naming which system decided. A mutation the legacy system accepted that
SWOOSH does not apply now becomes a journal entry (never one that carries a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swoosh.api.server.gateway import TransitionOutcome
from swoosh.api.server.legacy import LegacyAnswer
from swoosh.api.server.signing import Delegation, LegacyProposal
from swoosh.guards.policy import BUILTIN_RULES, scan
from swoosh.workflows.answers import Accepted
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.shadow import JournalEntry

DECIDED_BY = "X-Swoosh-Decided-By"


@dataclass
class Answer:
    """What the caller gets: a status, a JSON body, headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Mutation:
    """One mutation as the router sees it, whatever endpoint it came through."""

    project_id: str
    transition: str
    idem_key: str | None
    request: ProposalRequest | None  # signed by its caller
    legacy: LegacyProposal | None  # a legacy body the gateway completes
    body: dict[str, Any]  # as sent (journaled for a later catch-up)
    header_fields: dict[str, str]
    forward_path: str  # the legacy system's path for it
    raw: bytes
    headers: Mapping[str, str]


def not_mappable(reason: str) -> Answer:
    """501: the request maps to no single transition; the reason says what would."""
    return Answer(501, {"error": "not_mappable", "reason": reason})


def outcome_answer(outcome: TransitionOutcome, decided_by: str = "swoosh") -> Answer:
    return Answer(outcome.status, outcome.answer.model_dump(mode="json"), {DECIDED_BY: decided_by})


def relay(answer: LegacyAnswer) -> Answer:
    body = answer.body if answer.body is not None else {"error": "legacy", "reason": "the legacy system sent no JSON"}
    return Answer(answer.status, body, {DECIDED_BY: "legacy"})


def swoosh_result(outcome: TransitionOutcome) -> tuple[bool, str]:
    answer = outcome.answer
    if isinstance(answer, Accepted):
        return True, "duplicate" if answer.duplicate else "applied"
    return False, f"rejected:{answer.error}"


def journal_entry(m: Mutation, delegation: Delegation | None) -> JournalEntry | None:
    """The journal entry for a mutation the legacy system accepted in bypass; None when it carries a secret."""
    inputs = m.legacy.inputs if m.legacy else m.body.get("inputs", {})
    evidence = (m.legacy.evidence if m.legacy else m.body.get("evidence")) or []
    if scan(BUILTIN_RULES, inputs if isinstance(inputs, dict) else {}, [e for e in evidence if isinstance(e, str)]):
        return None  # never written to Temporal history in any form
    return JournalEntry(
        idem_key=m.idem_key or "",
        transition=m.transition,
        body=m.body,
        header_fields=m.header_fields,
        token_label=delegation.token_label if delegation else None,
        signer=delegation.signer if delegation else None,
    )
