"""`swoosh propose TRANSITION`: sign a proposal with a key file and send it to the API.

Prints the answer JSON (the 202 answer, or the 400 rejection) and exits 0 when accepted, 1 when
rejected, 2 for anything else (401, 404, 413, still 429/503 after retries, no connection).
With `--dry-run` it prints what the answer would be now and changes nothing (exit 0 would be
accepted, 1 would be rejected).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swoosh.api.client import SwooshClient
from swoosh.api.client.errors import Rejected, SwooshApiError
from swoosh.workflows.errors import ConfigError

DEFAULT_API = "http://127.0.0.1:8080"
# The bearer token never comes from argv (visible to every user in `ps`): from the environment or a file.
TOKEN_ENV = "SWOOSH_TOKEN"
TOKEN_FILE_ENV = "SWOOSH_TOKEN_FILE"


def default_api_url(env: Mapping[str, str] | None = None) -> str:
    """$SWOOSH_API_URL, else the API the same variables would start (`SWOOSH_API_PUBLIC_URL`, host and port)."""
    env = os.environ if env is None else env
    if env.get("SWOOSH_API_URL"):
        return env["SWOOSH_API_URL"].rstrip("/")
    if env.get("SWOOSH_API_PUBLIC_URL"):
        return env["SWOOSH_API_PUBLIC_URL"].rstrip("/")
    host = env.get("SWOOSH_API_HOST") or "127.0.0.1"
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    port = env.get("SWOOSH_API_PORT") or DEFAULT_API.rsplit(":", 1)[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        default=default_api_url(),
        help="API base URL (default $SWOOSH_API_URL, else http://$SWOOSH_API_HOST:$SWOOSH_API_PORT)",
    )
    parser.add_argument("--project", default=os.environ.get("SWOOSH_DEFAULT_PROJECT", "default"), help="project id")
    parser.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help=f"file holding the bearer token (default ${TOKEN_FILE_ENV}; else the token in ${TOKEN_ENV})",
    )


def bearer_token(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> str | None:
    """The CLI's bearer token: --token-file, else $SWOOSH_TOKEN_FILE, else $SWOOSH_TOKEN, else none."""
    env = os.environ if environ is None else environ
    path = args.token_file or (Path(env[TOKEN_FILE_ENV]) if env.get(TOKEN_FILE_ENV) else None)
    if path is None:
        return env.get(TOKEN_ENV) or None
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the token file {path}: {getattr(err, 'strerror', None) or err}") from None
    if not token:
        raise ConfigError(f"the token file {path} is empty")
    return token


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("transition", help="e.g. Boot_ConfigOk")
    parser.add_argument("--inputs", default="{}", help="inputs: a JSON object, @file or - for stdin (default {})")
    parser.add_argument("--key", required=True, type=Path, help="private key file written by `swoosh keygen`")
    parser.add_argument("--window-id", default=None)
    parser.add_argument("--evidence", action="append", default=None, help="evidence reference (repeatable)")
    parser.add_argument("--idem-key", default=None, help="default: a fresh goal:beat:opclass:uuid")
    parser.add_argument("--retry-stale", action="store_true", help="on stale_state_hash re-read the head and resend")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only ask what the answer would be now (admission and guards); change nothing",
    )
    add_common(parser)


def read_inputs(text: str, prog: str = "swoosh propose") -> dict[str, Any] | None:
    """`--inputs`: a JSON object given inline, as `@file`, or `-` for stdin; None (after saying why) if not."""
    source = "--inputs"
    try:
        if text == "-":
            text, source = sys.stdin.read(), "stdin"
        elif text.startswith("@"):
            source = text[1:]
            text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        print(f"{prog}: cannot read {source}: {getattr(err, 'strerror', None) or err}", file=sys.stderr)
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        print(f"{prog}: {source} is not JSON: {err}", file=sys.stderr)
        return None
    if not isinstance(value, dict):
        print(f"{prog}: {source} must hold a JSON object", file=sys.stderr)
        return None
    return value


def main(args: argparse.Namespace) -> int:
    inputs = read_inputs(args.inputs)
    if inputs is None:
        return 2
    try:
        with SwooshClient(args.api, args.project, key=args.key, token=bearer_token(args)) as client:
            if args.dry_run:
                verdict = client.dry_run(
                    args.transition, inputs, window_id=args.window_id, evidence=args.evidence, idem_key=args.idem_key
                )
                print(json.dumps(verdict.model_dump(mode="json"), indent=2))
                return 0 if verdict.accepted else 1
            answer = client.propose(
                args.transition,
                inputs,
                window_id=args.window_id,
                evidence=args.evidence,
                idem_key=args.idem_key,
                retry_stale=args.retry_stale,
            )
    except Rejected as err:
        print(json.dumps(err.body, indent=2))
        return 1
    except SwooshApiError as err:
        print(f"swoosh propose: {err}", file=sys.stderr)
        return 2
    print(json.dumps(answer.model_dump(mode="json"), indent=2))
    return 0
