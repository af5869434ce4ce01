"""HMMM council guards: quorum certificates (signed votes) and approvals (signed by the council).

A vote or approval is an Ed25519 signature by the voter's key over the canonical JSON of
`{"kind", "project_id", "members_hash", "window_id"}`. Default quorum rule: a strict majority of
the eligible council identities in `boot.identities` (role `council` or `*`); approvals need a strict
majority of the elected members.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import sign_object, signer_id, verify_object

VOTE_KIND = "swoosh.vote.v1"
APPROVAL_KIND = "swoosh.approval.v1"


def members_hash(members: list[str]) -> str:
    """The hash of a council member set (order and duplicates do not matter)."""
    return content_hash(sorted(set(members)))


def ballot(kind: str, project_id: str, council_hash: str, window_id: str | None) -> dict[str, Any]:
    return {"kind": kind, "project_id": project_id, "members_hash": council_hash, "window_id": window_id}


def sign_vote(key: Ed25519PrivateKey, project_id: str, council_hash: str, window_id: str | None) -> dict[str, Any]:
    """A signed vote for a council, as a caller puts it in `inputs.votes`."""
    voter = signer_id(key.public_key())
    sig = sign_object(key, ballot(VOTE_KIND, project_id, council_hash, window_id))
    return {"voter": voter, "members_hash": council_hash, "window_id": window_id, "signature": sig}


def sign_approval(key: Ed25519PrivateKey, project_id: str, council_hash: str, window_id: str | None) -> dict[str, Any]:
    """A signed approval, as a caller puts it in `inputs.approvals`."""
    approver = signer_id(key.public_key())
    sig = sign_object(key, ballot(APPROVAL_KIND, project_id, council_hash, window_id))
    return {"approver": approver, "members_hash": council_hash, "window_id": window_id, "signature": sig}


def eligible_council(state: dict[str, Any]) -> list[str]:
    return sorted(i["id"] for i in state["boot"]["identities"] if "*" in i["roles"] or "council" in i["roles"])


def _check_signed_set(
    guard: str,
    kind: str,
    who_field: str,
    items: list[dict[str, Any]],
    eligible: list[str],
    council_hash: str,
    ctx: GuardContext,
    need: int,
) -> GuardOutcome:
    reasons: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        who = item.get(who_field)
        if who in seen:
            reasons.append(f"{who_field} {who} appears twice")
            continue
        seen.add(str(who))
        if who not in eligible:
            reasons.append(f"{kind} {i}: {who_field} {who} is not an eligible council identity")
        if item.get("members_hash") != council_hash:
            reasons.append(f"{kind} {i}: signed for a different member set")
        if item.get("window_id") != ctx.window_id:
            reasons.append(f"{kind} {i}: stale window {item.get('window_id')} (proposal is in {ctx.window_id})")
        kind_tag = VOTE_KIND if kind == "vote" else APPROVAL_KIND
        if not verify_object(
            str(who), ballot(kind_tag, ctx.project_id, council_hash, ctx.window_id), str(item.get("signature"))
        ):
            reasons.append(f"{kind} {i}: signature by {who} is invalid")
    if reasons:
        return failed(guard, *reasons)
    if len(seen) < need:
        return failed(guard, f"{len(seen)} valid {kind}s of {len(eligible)} eligible; {need} needed")
    return passed(guard, f"{len(seen)} valid {kind}s of {len(eligible)} eligible; {need} needed")


def quorum_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    """The quorum certificate elects exactly the proposed members, by a majority of the council."""
    members = list(inputs.get("members", []))
    proposed_hash = members_hash(members)
    if len(set(members)) != len(members):
        return failed("quorum", "a member is listed twice")
    if inputs.get("members_hash") != proposed_hash:
        return failed("quorum", "members_hash differs from the hash of the proposed member set")
    eligible = eligible_council(state)
    strangers = sorted(set(members) - set(eligible))
    if strangers:
        return failed("quorum", f"proposed member(s) not eligible council identities: {', '.join(strangers)}")
    need = len(eligible) // 2 + 1
    return _check_signed_set(
        "quorum", "vote", "voter", list(inputs.get("votes", [])), eligible, proposed_hash, ctx, need
    )


def approvals_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    """A strict majority of the elected council approved, in this window."""
    members = list(state["council"]["members"])
    if not members:
        return failed("approvals", "no council is elected")
    council_hash = state["council"]["members_hash"]
    need = len(members) // 2 + 1
    items = list(inputs.get("approvals", []))
    return _check_signed_set("approvals", "approval", "approver", items, members, council_hash, ctx, need)
