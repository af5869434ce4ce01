"""Build signed proposals, votes and approvals for a project: the client's and test writers' kit."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client._clock import HLCClock
from swoosh.guards.council import election_epoch, eligible_council, members_hash, sign_approval, sign_vote
from swoosh.guards.readiness import region_hashes
from swoosh.workflows.crypto import signer_id
from swoosh.workflows.identities import identities_epoch, operators, sign_rotation_approval
from swoosh.workflows.keyring import Identity, Keyring
from swoosh.workflows.proposal import build_body

DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "operator": ("operator", "boot", "policy"),
    "ingestion": ("ingestion",),
    "environment": ("environment",),
    "execution": ("execution",),
    "council-1": ("council", "tooling"),
    "council-2": ("council",),
    "council-3": ("council",),
}


@dataclass
class Signers:
    """Named Ed25519 keys with their roles; `keyring()` is what SWOOSH_KEYRING would hold."""

    keys: dict[str, Ed25519PrivateKey]
    roles: dict[str, tuple[str, ...]]

    @classmethod
    def generate(cls, roles: dict[str, tuple[str, ...]] | None = None) -> Signers:
        roles = dict(DEFAULT_ROLES if roles is None else roles)
        return cls({name: Ed25519PrivateKey.generate() for name in roles}, roles)

    def id(self, name: str) -> str:
        return signer_id(self.keys[name].public_key())

    def keyring(self) -> Keyring:
        return Keyring(signers=tuple(Identity(id=self.id(n), roles=r) for n, r in self.roles.items()))

    def council_names(self) -> list[str]:
        return [n for n, r in self.roles.items() if "council" in r or "*" in r]

    def for_role(self, role: str) -> str:
        for name, roles in self.roles.items():
            if role in roles or "*" in roles:
                return name
        raise KeyError(f"no signer has role {role}")


@dataclass
class ProposalFactory:
    """Makes signed proposal bodies for one project with a caller-side HLC and fresh idem keys."""

    signers: Signers
    project_id: str
    clock: HLCClock = field(default_factory=HLCClock)
    prefix: str = "goal"
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def idem_key(self, transition: str) -> str:
        return f"{self.prefix}:{next(self._seq)}:{transition}:{self.project_id}"

    def body(
        self,
        transition: str,
        head_hash: str,
        inputs: dict[str, Any] | None = None,
        *,
        signer: str | None = None,
        window_id: str | None = None,
        idem_key: str | None = None,
        hlc: str | None = None,
        evidence: list[str] | None = None,
    ) -> dict[str, Any]:
        name = signer or self.signer_for(transition)
        return build_body(
            self.signers.keys[name],
            transition=transition,
            current_state_hash=head_hash,
            idem_key=idem_key or self.idem_key(transition),
            hlc=hlc or self.clock.now().format(),
            inputs=inputs,
            project_id=self.project_id,
            window_id=window_id,
            evidence=evidence,
        )

    def signer_for(self, transition: str) -> str:
        region = transition.split("_", 1)[0]
        role = {
            "Boot": "boot",
            "Ingestion": "ingestion",
            "Council": "council",
            "Environment": "environment",
            "Execution": "execution",
            "Recovery": "council",
            "Control": "operator",
            "Policy": "operator",
            "License": "operator",
            "Identity": "operator",
        }[region]
        return self.signers.for_role(role)

    # -- inputs that need signatures or the current state
    def council_members(self, state: dict[str, Any] | None = None) -> list[str]:
        """The council identities this factory holds keys for; with `state`, only those eligible there."""
        ids = sorted(self.signers.id(n) for n in self.signers.council_names())
        if state is None:
            return ids
        eligible = set(eligible_council(state))
        return [i for i in ids if i in eligible]

    def votes(
        self,
        members: list[str],
        window_id: str | None,
        voters: list[str] | None = None,
        *,
        epoch: int | None = None,
    ) -> list[dict[str, Any]]:
        """Votes for `members` by the named signers, cast in election `epoch` (None: the old form)."""
        names = voters if voters is not None else self.signers.council_names()
        h = members_hash(members)
        return [sign_vote(self.signers.keys[n], self.project_id, h, window_id, epoch) for n in names]

    def quorum_inputs(
        self, window_id: str | None, members: list[str] | None = None, *, state: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A quorum certificate's inputs: with `state`, for the election in progress there (eligible
        members and voters, votes naming its election epoch); without, the old form of vote."""
        if state is None:
            members = members if members is not None else self.council_members()
            return {"members": members, "members_hash": members_hash(members), "votes": self.votes(members, window_id)}
        eligible = self.council_members(state)
        members = members if members is not None else eligible
        voters = [n for n in self.signers.council_names() if self.signers.id(n) in eligible]
        votes = self.votes(members, window_id, voters, epoch=election_epoch(state))
        return {"members": members, "members_hash": members_hash(members), "votes": votes}

    def approvals(self, state: dict[str, Any], window_id: str | None) -> list[dict[str, Any]]:
        members = set(state["council"]["members"])
        names = [n for n in self.signers.council_names() if self.signers.id(n) in members]
        h = state["council"]["members_hash"]
        return [sign_approval(self.signers.keys[n], self.project_id, h, window_id) for n in names]

    def rotation_inputs(
        self,
        state: dict[str, Any],
        *,
        add: list[dict[str, Any]] | None = None,
        remove: list[str] | None = None,
        reason: str = "key rotation",
        approvers: list[str] | None = None,
        proposer: str | None = None,
    ) -> dict[str, Any]:
        """`Identity_Rotate`'s inputs for the project in `state`, approved by the named signers.

        `approvers` default: every other operator of the project this factory holds a key for (the
        proposer, `proposer` or the operator signer, counts as one approval by signing the proposal).
        """
        add, remove = list(add or []), list(remove or [])
        epoch = identities_epoch(state)
        if approvers is None:
            me = self.signers.id(proposer or self.signer_for("Identity_Rotate"))
            eligible = set(operators(state["boot"]["identities"])) - {me}
            approvers = [n for n in self.signers.keys if self.signers.id(n) in eligible]
        approvals = [
            sign_rotation_approval(self.signers.keys[n], self.project_id, epoch, add, remove) for n in approvers
        ]
        inputs: dict[str, Any] = {"add": add, "remove": remove, "reason": reason}
        if approvals:
            inputs["approvals"] = approvals
        return inputs

    @staticmethod
    def region_hashes(state: dict[str, Any]) -> dict[str, str]:
        return region_hashes(state)
