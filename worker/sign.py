"""`swoosh sign TRANSITION`: print a signed proposal body, for curl or any other HTTP client.

    swoosh sign Boot_ConfigOk --key .swoosh/dev/keys/operator.key --project demo > body.json
    curl -s -X POST http://127.0.0.1:8080/v1/projects/demo/transition -H 'Content-Type: application/json' -d @body.json

The body is signed over exactly what is printed (canonical JSON: any whitespace change is fine, any
other change breaks the signature). It names the project's current head, read from the API unless
`--head` is given, a fresh HLC from this machine's clock and a fresh idem key; send it soon (the HLC
may be at most a minute ahead of the workflow's clock, and a transition applied meanwhile makes the
head stale). Inputs are JSON, `@file` or `-` (stdin), e.g. the output of `swoosh vote`.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from swoosh.api.client import HLCClock, SwooshClient, load_key
from swoosh.api.client.errors import SwooshApiError
from swoosh.worker.propose import add_common, bearer_token, read_inputs
from swoosh.workflows.canonical import is_hash
from swoosh.workflows.proposal import build_body


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transition", help="e.g. Boot_ConfigOk")
    parser.add_argument("--inputs", default="{}", help="inputs: a JSON object, @file or - for stdin (default {})")
    parser.add_argument("--key", required=True, type=Path, help="private key file written by `swoosh keygen`")
    parser.add_argument("--head", default=None, help="the head hash to sign against (default: read from the API)")
    parser.add_argument("--window-id", default=None)
    parser.add_argument("--evidence", action="append", default=None, help="evidence reference (repeatable)")
    parser.add_argument("--idem-key", default=None, help="default: a fresh sign:<transition>:<uuid>")
    add_common(parser)


def main(args: argparse.Namespace) -> int:
    inputs = read_inputs(args.inputs, "swoosh sign")
    if inputs is None:
        return 2
    clock = HLCClock()
    head = args.head
    try:
        key = load_key(args.key)
        if head is None:
            with SwooshClient(args.api, args.project, token=bearer_token(args), clock=clock) as client:
                head = client.state("meta").hash  # also makes the clock observe the project's last HLC
    except SwooshApiError as err:
        print(f"swoosh sign: {err}", file=sys.stderr)
        return 2
    if not is_hash(head):
        print("swoosh sign: --head must be sha256- followed by 64 lowercase hex digits", file=sys.stderr)
        return 2
    body = build_body(
        key,
        transition=args.transition,
        current_state_hash=head,
        idem_key=args.idem_key or f"sign:{args.transition}:{uuid.uuid4().hex}",
        hlc=clock.now().format(),
        inputs=inputs,
        project_id=args.project,
        window_id=args.window_id,
        evidence=args.evidence,
    )
    print(json.dumps(body, indent=2))
    url = f"{args.api.rstrip('/')}/v1/projects/{args.project}/transition"
    print(f"# send it: curl -s -X POST {url} -H 'Content-Type: application/json' -d @body.json", file=sys.stderr)
    return 0
