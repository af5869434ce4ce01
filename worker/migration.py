"""`swoosh migration show|set`: the migration mode every API replica applies, read or changed through the API.

    swoosh migration show
    swoosh migration set shadow --legacy-url http://whoosh:8080 --reason "shadow phase"
    swoosh migration set route --routed Council,Ingestion --reason "council and ingestion first"
    swoosh migration set bypass --reason "rollback: SWOOSH is down"

`set` keeps the legacy URL in force when none is given, and refuses (exit 1) a change the API refuses.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from swoosh.worker.propose import add_common, bearer_token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["show", "set"])
    parser.add_argument("mode", nargs="?", choices=["off", "shadow", "route", "bypass"], help="set: the new mode")
    parser.add_argument("--legacy-url", default=None, help="set: the legacy system's base URL (default: unchanged)")
    parser.add_argument("--routed", default=None, help="set route: prefixes such as Council,Ingestion, or *")
    parser.add_argument("--reason", default="", help="set: why (kept in the audit)")
    parser.add_argument("--audit", type=int, default=5, help="show: newest audit entries shown")
    add_common(parser)


def _client(args: argparse.Namespace) -> httpx.Client:
    token = bearer_token(args)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=args.api, headers=headers, timeout=30.0, trust_env=False)


def main(args: argparse.Namespace) -> int:
    try:
        with _client(args) as http:
            if args.action == "show":
                resp = http.get("/v1/migration", params={"audit": args.audit})
            else:
                if args.mode is None:
                    print("swoosh migration set: name the mode (off, shadow, route, bypass)", file=sys.stderr)
                    return 2
                current = http.get("/v1/migration", params={"audit": 0})
                current.raise_for_status()
                now: dict[str, Any] = current.json()
                body = {
                    "mode": args.mode,
                    "legacy_url": args.legacy_url or now.get("legacy_url"),
                    "routed": args.routed if args.routed is not None else (now.get("routed") or []),
                    "reason": args.reason,
                    "expected_version": now.get("version"),
                }
                if args.mode != "route" and args.routed is None:
                    body["routed"] = []
                resp = http.put("/v1/migration", json=body)
    except httpx.HTTPError as err:
        print(f"swoosh migration: the API cannot be reached: {err}", file=sys.stderr)
        return 2
    print(json.dumps(resp.json(), indent=2))
    return 0 if resp.status_code == 200 else 1
