"""`swoosh vote` and `swoosh approve`: signed council votes and approvals, as a proposal's `inputs`.

    swoosh vote --key council-1.key --key council-2.key --project demo --window-id backbeat:W-7
        → {"members": [...], "members_hash": "sha256-…", "votes": [...]}    Council_QuorumCert's inputs
    swoosh approve --key council-1.key --key council-2.key --project demo --window-id backbeat:W-9
        → {"approvals": [...]}                                               Execution_ApprovalsThreshold's

Each vote or approval is signed by one key file (docs/transitions.md says over what). The project's
state is read from the API first, because what a ballot must name depends on it: the council being
elected and its election epoch (a vote counts only in the election it was cast for), the elected
council's `members_hash` for approvals. The members default to the voters
themselves. The output goes to `swoosh propose … --inputs @file` or `swoosh sign … --inputs @file`.
The inputs are built exactly as the test kit builds them (`swoosh.workflows.testing.driver.valid_inputs`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swoosh.api.client import ProposalFactory, Signers, SwooshClient, load_key
from swoosh.api.client.errors import SwooshApiError
from swoosh.worker.propose import add_common, bearer_token
from swoosh.workflows.testing.driver import valid_inputs


def add_ballot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", action="append", required=True, type=Path, help="a council key file (repeat)")
    parser.add_argument("--window-id", required=True, help="the window the proposal will name")
    add_common(parser)


def council_factory(keys: list[Path], project_id: str) -> ProposalFactory:
    """A factory holding the given keys, each as a council identity."""
    loaded = {f"key-{i}": load_key(k) for i, k in enumerate(keys)}
    return ProposalFactory(Signers(loaded, {name: ("council",) for name in loaded}), project_id)


def ballots(args: argparse.Namespace, transition: str, members: list[str] | None = None) -> int:
    """Print `transition`'s signed inputs for the project's current state."""
    prog = "swoosh vote" if transition == "Council_QuorumCert" else "swoosh approve"
    try:
        factory = council_factory(args.key, args.project)
        with SwooshClient(args.api, args.project, token=bearer_token(args)) as client:
            doc: dict[str, Any] = client.state().projection
    except SwooshApiError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    if transition == "Execution_ApprovalsThreshold" and not doc["council"]["members_hash"]:
        print(f"{prog}: project {args.project} has no elected council yet", file=sys.stderr)
        return 1
    inputs, _ = valid_inputs(factory, transition, doc, 0, 0, args.window_id)
    if members is not None:  # votes of this election (its epoch, from the state read), by the eligible keys
        inputs = factory.quorum_inputs(args.window_id, members, state=doc)
    print(json.dumps(inputs, indent=2))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`swoosh vote`."""
    add_ballot_arguments(parser)
    parser.add_argument(
        "--members", default=None, help="the council to elect, comma-separated signer ids (default: the voters)"
    )


def main(args: argparse.Namespace) -> int:
    """`swoosh vote`."""
    members = [m.strip() for m in args.members.split(",") if m.strip()] if args.members else None
    return ballots(args, "Council_QuorumCert", members)
