"""Secret-bearing proposals: SHHH's built-in rules over a proposal's free text, and what answers one.

A proposal whose text matches a built-in rule must never reach Temporal history in any form. It is
caught before any Temporal call (`lifecycle.client`), and again in the Update validator, which
writes nothing. The places reported name the field and list positions only: a caller's dict keys are
shown only when they are plain identifiers that match no rule, so a report cannot carry the secret.
"""

from __future__ import annotations

import re
from typing import Any

from swoosh.guards.facts import PolicyRuleSpec
from swoosh.guards.outcome import GuardOutcome, failed
from swoosh.guards.policy import BUILTIN_RULES, rule_matches, signed_material
from swoosh.workflows.answers import GuardResult, Rejected
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.proposal import Proposal

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,31}")
MAX_BREACHES = 16
# Envelope fields that hold no caller text (hashes, key ids, signatures), and are format-checked.
_NOT_TEXT = frozenset({"signature", "signer", "current_state_hash", "inputs_hash", "hlc"})
RATIONALE_PREFIX = "SHHH policy breach: "


Rules = tuple[PolicyRuleSpec, ...]


def _matches(text: str, rules: Rules) -> list[str]:
    return [f"{r.id} ({r.severity})" for r in rules if rule_matches(r, text)]


def _shown_key(key: str, rules: Rules = BUILTIN_RULES) -> str:
    return key if _PLAIN_KEY.fullmatch(key) and not _matches(key, rules) else "<key>"


def _walk(value: Any, path: str, out: list[str], rules: Rules, exempt: bool = True, key: object = None) -> None:
    if isinstance(value, str):
        if not (exempt and signed_material(key, value)):
            out.extend(f"{rule} at {path}" for rule in _matches(value, rules))
    elif isinstance(value, dict):
        for k in sorted(value):
            shown = f"{path}.{_shown_key(k, rules)}"
            out.extend(f"{rule} at {path}.<key>" for rule in _matches(k, rules))
            _walk(value[k], shown, out, rules, exempt, k)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", out, rules, exempt)


def secret_breaches(proposal: Proposal, rules: Rules = BUILTIN_RULES, signed_exempt: bool = True) -> list[str]:
    """`rule (severity) at place` for every rule match in the proposal's free text, in a fixed order.

    `rules` default to the newest built-in ones: what may never be sent; signer ids and signatures
    are not free text (`guards.policy.signed_material`). Workflow code that decides (and is replayed)
    passes the project's own (`Engine.secret_rules`, `EngineConfig.signed_fields_exempt`).
    """
    out: list[str] = []
    _walk(proposal.inputs, "inputs", out, rules, signed_exempt)
    _walk(list(proposal.evidence), "evidence", out, rules, signed_exempt)
    for name in ("idem_key", "window_id"):
        value = getattr(proposal, name)
        if isinstance(value, str):
            _walk(value, name, out, rules)
    return list(dict.fromkeys(out))[:MAX_BREACHES]


def breach_outcome(breaches: list[str]) -> GuardOutcome:
    """The policy guard's outcome for these breaches (as the guard itself would word it)."""
    return failed("policy", *(f"breach: {b}" for b in breaches))


def raw_breaches(body: Any, header_fields: dict[str, str]) -> list[str]:
    """`secret_breaches` for a body that is not a well-formed proposal: every field but the signature's own."""
    out: list[str] = []
    if isinstance(body, dict):
        for name in sorted(body):
            if name not in _NOT_TEXT:
                _walk(body[name], _shown_key(name) if isinstance(name, str) else "<key>", out, BUILTIN_RULES)
    for name in sorted(header_fields):
        _walk(header_fields[name], f"header {_shown_key(name)}", out, BUILTIN_RULES)
    return list(dict.fromkeys(out))[:MAX_BREACHES]


def breach_rejection(breaches: list[str], head_hash: str, quarantined: bool = False) -> Rejected:
    """The answer to a secret-bearing proposal: `guard_failed` by `policy`, naming rules and places."""
    outcome = breach_outcome(breaches)
    error = ProposalError("guard_failed", "; ".join(outcome.reasons), failing_guard="policy")
    guards = [GuardResult(guard="policy", ok=False, reasons=list(outcome.reasons))]
    return Rejected.of(error, head_hash, guards, quarantined=quarantined)


def quarantine_rationale(breaches: list[str]) -> str:
    """The rationale a quarantine for these breaches carries (the same words as a policy guard failure)."""
    return RATIONALE_PREFIX + "; ".join(breach_outcome(breaches).reasons)
