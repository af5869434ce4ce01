"""`swoosh state`: print a project's state (or a projection of it) as JSON, now or after any index (`--at N`)."""

from __future__ import annotations

import argparse
import json
import sys

from swoosh.api.client import SwooshClient
from swoosh.api.client.errors import SwooshApiError
from swoosh.worker.propose import add_common, bearer_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--projection", default=None, help="comma-separated sections, e.g. Council,Ingestion")
    parser.add_argument(
        "--at", type=int, default=None, metavar="N", help="the state as it was after index N (0 = genesis)"
    )
    parser.add_argument("--health", action="store_true", help="print the project's health instead")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    try:
        with SwooshClient(args.api, args.project, token=bearer_token(args)) as client:
            view = client.health() if args.health else client.state(args.projection, at=args.at)
    except SwooshApiError as err:
        if err.body is not None:
            print(json.dumps(err.body, indent=2))
        print(f"swoosh state: {err}", file=sys.stderr)
        return 1
    print(json.dumps(view.model_dump(mode="json"), indent=2))
    return 0
