"""`swoosh chaos --seed S --profile quick|full`: run the chaos scenario and print its report.

Exit status 0 when no invariant was violated and nothing was lost, 1 otherwise, 2 on a setup error.
The last line of the output is `chaos seed=<s> profile=<p> transitions=<n> faults=<f> violations=<v> lost=<l>`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

from swoosh.chaos.report import RecoveryMetrics
from swoosh.chaos.schedule import PROFILES, build_schedule, schedule_digest
from swoosh.chaos.stack import StackError

# Written into every folder a chaos run makes; only such a folder is ever deleted by a later run.
SENTINEL = ".swoosh-chaos-root"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (same seed, same fault schedule)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick", help="quick (~3 min) or full (~25 min)")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help=(
            "where the stack, logs and report go (default .swoosh/chaos/<seed>-<profile>); emptied first, "
            "so it must be empty, missing, or a folder an earlier chaos run made"
        ),
    )
    parser.add_argument("--metrics-port", type=int, default=None, help="also serve swoosh_recovery_time_seconds here")
    parser.add_argument("--schedule", action="store_true", help="print the fault schedule and exit")


def prepare_root(root: Path) -> str | None:
    """Empty `root` for a new run, or say why not: only a folder chaos made itself is ever deleted.

    A run starts from an empty folder. `--root` names any path, so deleting whatever is there would
    delete a user's files on a typo: only an empty folder or one holding the sentinel file an earlier
    run wrote is emptied.
    """
    if root.exists() and not root.is_dir():
        return f"--root {root} is not a folder"
    if root.is_dir() and any(root.iterdir()):
        if not (root / SENTINEL).is_file():
            return (
                f"--root {root} is not empty and was not made by `swoosh chaos` (no {SENTINEL} in it); "
                "name an empty or new folder, or delete it yourself"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / SENTINEL).write_text("made by `swoosh chaos`; the next run with this --root deletes this folder\n")
    return None


def main(args: argparse.Namespace) -> int:
    profile = PROFILES[args.profile]
    if args.schedule:
        events = build_schedule(args.seed, profile)
        for ev in events:
            print(ev.describe())
        print(f"schedule seed={args.seed} profile={profile.name} events={len(events)} digest={schedule_digest(events)}")
        return 0
    root = args.root or Path(".swoosh") / "chaos" / f"{args.seed}-{profile.name}"
    problem = prepare_root(root)
    if problem is not None:
        print(f"swoosh chaos: {problem}", file=sys.stderr)
        return 2
    metrics = RecoveryMetrics()
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr="127.0.0.1", registry=metrics.registry)
    from swoosh.chaos.process import cancel_on_signal
    from swoosh.chaos.runner import run_chaos

    try:
        report = asyncio.run(cancel_on_signal(run_chaos(args.seed, profile, root, log=_log, metrics=metrics)))
    except StackError as err:
        print(f"swoosh chaos: the stack did not start: {err}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()), flush=True)
    return 1 if report.violations or report.lost else 0


def _log(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    _parser = argparse.ArgumentParser(prog="swoosh chaos", description="SWOOSH chaos harness")
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
