"""HMMM council guards: quorum certificates (signed votes) and approvals (signed by the council).

A vote is an Ed25519 signature by the voter's key over the canonical JSON of
`{"kind": "swoosh.vote.v2", "project_id", "members_hash", "window_id", "epoch"}`, where `epoch` is
the election epoch (`election_epoch`): it grows with every election, ejection and re-planning, so a
vote counts only in the election it was cast for and an old certificate can never be sent again.
Projects started before the election epoch (and not yet adopted it) still take `swoosh.vote.v1`
votes without `epoch`; their schema refuses `epoch`, a new project's requires it.
An approval is the same over `{"kind": "swoosh.approval.v1", "project_id", "members_hash", "window_id"}`.

Eligible voters and members: the council identities in `boot.identities` (role `council` or `*`)
that are not in `council.ejected`; an ejected identity is eligible again only once the roles are
planned again (`Council_ProfilesLoaded` clears the list). Default quorum rule: a strict majority of
the eligible; approvals need a strict majority of the elected members.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed
from swoosh.workflows.canonical import content_hash
from swoosh.workflows.crypto import sign_object, signer_id, verify_object

VOTE_KIND = "swoosh.vote.v1"  # without the election epoch: projects started before it only
ELECTION_VOTE_KIND = "swoosh.vote.v2"
APPROVAL_KIND = "swoosh.approval.v1"


def members_hash(members: list[str]) -> str:
    """The hash of a council member set (order and duplicates do not matter)."""
    return content_hash(sorted(set(members)))


def election_epoch(state: dict[str, Any]) -> int:
    """The election a vote is cast in: `epoch.council + epoch.execution` of the state document.

    Both epochs only grow, so their sum grows with any council transition (profiles loaded, a
    certificate, an ejection) and any execution one (`Recovery_QuorumRestored` re-elects in RECOVERY).
    """
    return int(state["epoch"]["council"]) + int(state["epoch"]["execution"])


def ballot(
    kind: str, project_id: str, council_hash: str, window_id: str | None, epoch: int | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind, "project_id": project_id, "members_hash": council_hash, "window_id": window_id}
    if epoch is not None:
        out["epoch"] = epoch
    return out


def sign_vote(
    key: Ed25519PrivateKey, project_id: str, council_hash: str, window_id: str | None, epoch: int | None = None
) -> dict[str, Any]:
    """A signed vote for a council in election `epoch` (`election_epoch(state)`), as put in `inputs.votes`.

    Without `epoch`: a vote of the old form, for projects started before the election epoch.
    """
    voter = signer_id(key.public_key())
    kind = VOTE_KIND if epoch is None else ELECTION_VOTE_KIND
    sig = sign_object(key, ballot(kind, project_id, council_hash, window_id, epoch))
    vote: dict[str, Any] = {"voter": voter, "members_hash": council_hash, "window_id": window_id}
    if epoch is not None:
        vote["epoch"] = epoch
    vote["signature"] = sig
    return vote


def sign_approval(key: Ed25519PrivateKey, project_id: str, council_hash: str, window_id: str | None) -> dict[str, Any]:
    """A signed approval, as a caller puts it in `inputs.approvals`."""
    approver = signer_id(key.public_key())
    sig = sign_object(key, ballot(APPROVAL_KIND, project_id, council_hash, window_id))
    return {"approver": approver, "members_hash": council_hash, "window_id": window_id, "signature": sig}


def eligible_council(state: dict[str, Any]) -> list[str]:
    """Council identities (role `council` or `*`) not ejected since the roles were last planned."""
    ejected = set(state["council"]["ejected"])
    return sorted(
        i["id"]
        for i in state["boot"]["identities"]
        if ("*" in i["roles"] or "council" in i["roles"]) and i["id"] not in ejected
    )


def _check_signed_set(
    guard: str,
    kind: str,
    who_field: str,
    items: list[dict[str, Any]],
    eligible: list[str],
    council_hash: str,
    ctx: GuardContext,
    need: int,
    state: dict[str, Any],
) -> GuardOutcome:
    reasons: list[str] = []
    seen: set[str] = set()
    ejected = set(state["council"]["ejected"])
    for i, item in enumerate(items):
        who = item.get(who_field)
        if who in seen:
            reasons.append(f"{who_field} {who} appears twice")
            continue
        seen.add(str(who))
        if who in ejected:
            reasons.append(
                f"{kind} {i}: {who_field} {who} was ejected from the council (eligible once roles are planned again)"
            )
        elif who not in eligible:
            reasons.append(f"{kind} {i}: {who_field} {who} is not an eligible council identity")
        if item.get("members_hash") != council_hash:
            reasons.append(f"{kind} {i}: signed for a different member set")
        if item.get("window_id") != ctx.window_id:
            reasons.append(f"{kind} {i}: stale window {item.get('window_id')} (proposal is in {ctx.window_id})")
        epoch = item.get("epoch") if kind == "vote" else None
        if epoch is not None and epoch != election_epoch(state):
            reasons.append(
                f"{kind} {i}: cast in election epoch {epoch}; this election is epoch {election_epoch(state)}"
            )
        kind_tag = APPROVAL_KIND if kind != "vote" else (VOTE_KIND if epoch is None else ELECTION_VOTE_KIND)
        signed = ballot(kind_tag, ctx.project_id, council_hash, ctx.window_id, epoch)
        if not verify_object(str(who), signed, str(item.get("signature"))):
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
    unfit: list[str] = []  # reported together with the votes' own faults (an old certificate has both)
    ejected = sorted(set(members) & set(state["council"]["ejected"]))
    if ejected:
        unfit.append(f"proposed member(s) ejected from the council: {', '.join(ejected)}")
    strangers = sorted(set(members) - set(eligible) - set(ejected))
    if strangers:
        unfit.append(f"proposed member(s) not eligible council identities: {', '.join(strangers)}")
    need = len(eligible) // 2 + 1
    votes = list(inputs.get("votes", []))
    outcome = _check_signed_set("quorum", "vote", "voter", votes, eligible, proposed_hash, ctx, need, state)
    if unfit:
        return failed("quorum", *unfit, *(() if outcome.ok else outcome.reasons))
    return outcome


def approvals_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    """A strict majority of the elected council approved, in this window."""
    members = list(state["council"]["members"])
    if not members:
        return failed("approvals", "no council is elected")
    council_hash = state["council"]["members_hash"]
    need = len(members) // 2 + 1
    items = list(inputs.get("approvals", []))
    return _check_signed_set("approvals", "approval", "approver", items, members, council_hash, ctx, need, state)
