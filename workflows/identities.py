"""Identities of a running project: `Identity_Rotate`'s rules, its approvals, and the change it makes.

A project's identities live in `boot.identities`. `Identity_Rotate` (role `operator`) adds identities
(or replaces the roles of one already there) and removes others; from the next index on a removed
signer is `unauthorized_signer`. A rotation never leaves the project without an operator. Where the
project has two or more operator identities, a strict majority of them must approve it: the
proposer's own signature counts as one, the others sign an approval.

An approval is an Ed25519 signature by an operator's key over the canonical JSON of
`{"kind": "swoosh.rotation.v1", "project_id", "epoch", "add", "remove"}`: `add` sorted by id with
sorted roles, `remove` sorted, and `epoch` the project's identities epoch (`epoch.boot`, which every
rotation advances), so an approval holds for exactly this change to exactly these identities and
can never be replayed for another rotation, or for the same one later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.workflows.crypto import sign_object, signer_id, verify_object
from swoosh.workflows.errors import ProposalError

ROTATION_KIND = "swoosh.rotation.v1"
ROTATE = "Identity_Rotate"
OPERATOR = "operator"


def identities_epoch(document: dict[str, Any]) -> int:
    """The value an approval names: it changes with every rotation (and every boot transition)."""
    return int(document["epoch"]["boot"])


def normal_add(add: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`add` as approvals sign it and the document stores it: by id, each with sorted, unique roles."""
    return [{"id": a["id"], "roles": sorted(set(a["roles"]))} for a in sorted(add, key=lambda a: str(a["id"]))]


def statement(project_id: str, epoch: int, add: Iterable[dict[str, Any]], remove: Iterable[str]) -> dict[str, Any]:
    """What an approval of a rotation signs."""
    return {
        "kind": ROTATION_KIND,
        "project_id": project_id,
        "epoch": epoch,
        "add": normal_add(add),
        "remove": sorted(set(remove)),
    }


def sign_rotation_approval(
    key: Ed25519PrivateKey, project_id: str, epoch: int, add: Iterable[dict[str, Any]], remove: Iterable[str]
) -> dict[str, Any]:
    """An operator's approval of a rotation, as a proposer puts it in `inputs.approvals`."""
    return {
        "approver": signer_id(key.public_key()),
        "epoch": epoch,
        "signature": sign_object(key, statement(project_id, epoch, list(add), list(remove))),
    }


def has_role(identity: dict[str, Any], role: str) -> bool:
    roles = identity["roles"]
    return "*" in roles or role in roles


def operators(identities: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of the identities that may act as operator (role `operator` or `*`)."""
    return sorted(i["id"] for i in identities if has_role(i, OPERATOR))


def role_of(identities: Iterable[dict[str, Any]], signer: str, roles: Iterable[str]) -> str | None:
    """The first of `roles` the signer holds among `identities`; None when it holds none (or is no identity)."""
    for identity in identities:
        if identity["id"] == signer:
            return next((r for r in roles if has_role(identity, r)), None)
    return None


def rotated(
    identities: list[dict[str, Any]], add: list[dict[str, Any]], remove: list[str], cap: int | None = None
) -> list[dict[str, Any]]:
    """The identities after the rotation (sorted by id); raise invalid_transition when it cannot apply."""
    by_id = {i["id"]: i for i in identities}
    unknown = sorted(set(remove) - set(by_id))
    if unknown:
        raise ProposalError("invalid_transition", f"{ROTATE}: not an identity of the project: {', '.join(unknown)}")
    for r in remove:
        by_id.pop(r, None)
    for a in normal_add(add):
        by_id[a["id"]] = a
    out = [by_id[k] for k in sorted(by_id)]
    if cap is not None and len(out) > cap:
        raise ProposalError("invalid_transition", f"{ROTATE} would leave {len(out)} identities (at most {cap})")
    if not operators(out):
        raise ProposalError("invalid_transition", f"{ROTATE} would leave the project without an operator")
    return out


def check_rotation_inputs(inputs: dict[str, Any]) -> None:
    """What the inputs' schema cannot say on its own: a rotation changes something, each id once."""
    add: list[dict[str, Any]] = list(inputs.get("add") or [])
    remove: list[str] = list(inputs.get("remove") or [])
    added = [a["id"] for a in add]
    if not add and not remove:
        raise ProposalError("schema", f"{ROTATE}: add and remove are both empty")
    if len(set(added)) != len(added) or len(set(remove)) != len(remove):
        raise ProposalError("schema", f"{ROTATE}: an identity is listed twice in add or in remove")
    both = sorted(set(added) & set(remove))
    if both:
        raise ProposalError("schema", f"{ROTATE}: both added and removed: {', '.join(both)}")


def check_rotation(document: dict[str, Any], proposer: str, inputs: dict[str, Any], cap: int | None = None) -> None:
    """A rotation's rules against the project now (inputs already checked); raise ProposalError."""
    add: list[dict[str, Any]] = list(inputs.get("add") or [])
    remove: list[str] = list(inputs.get("remove") or [])
    current = list(document["boot"]["identities"])
    after = rotated(current, add, remove, cap)
    if after == current:
        raise ProposalError("invalid_transition", f"{ROTATE} changes nothing: the identities would stay as they are")
    _check_approvals(document, proposer, add, remove, list(inputs.get("approvals") or []))


def _check_approvals(
    document: dict[str, Any], proposer: str, add: list[dict[str, Any]], remove: list[str], approvals: list[Any]
) -> None:
    eligible = operators(document["boot"]["identities"])
    epoch = identities_epoch(document)
    signed = statement(document["meta"]["project_id"], epoch, add, remove)
    approvers: set[str] = {proposer}
    for n, a in enumerate(approvals):
        who = a["approver"]
        if who not in eligible:
            raise _unauthorized(f"approval {n}: {who} is not an operator identity of the project")
        if who in approvers and who != proposer:
            raise _unauthorized(f"approval {n}: {who} approves twice")
        if a["epoch"] != epoch:
            raise _unauthorized(
                f"approval {n}: signed at identities epoch {a['epoch']}; the project is at epoch {epoch}"
            )
        if not verify_object(who, signed, a["signature"]):
            raise _unauthorized(f"approval {n}: the signature by {who} is not over this rotation")
        approvers.add(who)
    need = len(eligible) // 2 + 1 if len(eligible) >= 2 else 1
    if len(approvers) < need:
        raise _unauthorized(
            f"{ROTATE} needs {need} of the {len(eligible)} operators (the proposer counts as one); "
            f"{len(approvers)} approved"
        )


def _unauthorized(reason: str) -> ProposalError:
    return ProposalError("unauthorized_signer", reason)
