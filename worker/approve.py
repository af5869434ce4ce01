"""`swoosh approve`: the council's signed approvals for `Execution_ApprovalsThreshold` (see `swoosh.worker.vote`)."""

from __future__ import annotations

import argparse

from swoosh.worker.vote import add_ballot_arguments, ballots


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_ballot_arguments(parser)


def main(args: argparse.Namespace) -> int:
    return ballots(args, "Execution_ApprovalsThreshold")
