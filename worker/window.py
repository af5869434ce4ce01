"""`swoosh window`: BACKBEAT's windows as the workers see them — which is open, when each opens, what it gates.

    swoosh window --project demo
    now 13:30:12.345Z: window backbeat:W-221000001, phase work (embedded schedule: 30 bpm, 4 beats per bar, …)
      plan    opens in 5.1 s   backbeat:W-221000002  gates Execution_NextWindow
      work    OPEN 1.4 s left  backbeat:W-221000001  gates Execution_PlanLocked
      …
    next for demo: Execution_BeatReviewGate needs the review window: opens in 1.4 s (backbeat:W-221000001)

A window-gated transition must name the window (`--window-id`) and be sent while its class is open.
`--json` prints the API's answer as it is.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import httpx

from swoosh.worker.propose import add_common, bearer_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    add_common(parser)


def _when(c: dict[str, Any]) -> str:
    if c["open"]:
        return f"OPEN {c['closes_in_ms'] / 1000:.1f} s left" if c["closes_in_ms"] is not None else "OPEN"
    return f"opens in {c['opens_in_ms'] / 1000:.1f} s" if c["opens_in_ms"] is not None else "not known ahead"


def render(answer: dict[str, Any]) -> str:
    now = datetime.fromtimestamp(answer["now_ms"] / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"
    lines = [f"now {now}: window {answer['window_id']}, phase {answer['phase']} ({answer['source']})"]
    if answer.get("error"):
        lines.append(f"  BACKBEAT: {answer['error']}")
    gated: dict[str, list[str]] = {}
    for transition, cls in answer["gates"].items():
        gated.setdefault(cls, []).append(transition)
    for cls, c in answer["classes"].items():
        lines.append(
            f"  {cls:<7} {_when(c):<18} {c['window_id'] or '-':<24} gates {', '.join(gated.get(cls, [])) or '-'}"
        )
    nxt = answer.get("next")
    if nxt is None:
        lines.append(f"next for {answer['project_id']}: nothing window-gated until it is in EXECUTION")
    else:
        when = _when({"open": nxt["open"], "closes_in_ms": nxt["closes_in_ms"], "opens_in_ms": nxt["opens_in_ms"]})
        lines.append(
            f"next for {answer['project_id']}: {nxt['transition']} needs the {nxt['window_class']} window: "
            f"{when.lower()} (--window-id {nxt['window_id']})"
        )
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    token = bearer_token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = httpx.get(f"{args.api.rstrip('/')}/v1/projects/{args.project}/window", headers=headers, timeout=30)
    except httpx.HTTPError as err:
        print(f"swoosh window: cannot reach the API at {args.api}: {type(err).__name__}", file=sys.stderr)
        return 2
    try:
        body = resp.json()
    except ValueError:
        body = {"reason": resp.text[:200]}
    if resp.status_code != 200:
        print(f"swoosh window: HTTP {resp.status_code}: {body.get('reason', body)}", file=sys.stderr)
        return 2 if resp.status_code != 400 else 1
    print(json.dumps(body, indent=2) if args.json else render(body))
    return 0
