"""`swoosh shadow report`: where SWOOSH and the legacy system disagreed, per project (text or `--json`).

Reads the projects' migration ledgers from Temporal (every project that has one, or `--project`),
so it works with the API down. Exit 0 when no divergence is reported, 1 when one is (so a runbook or
CI step can stop on it), 2 on a setup error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from swoosh.worker.settings import Settings
from swoosh.workflows.lifecycle.connection import connect
from swoosh.workflows.lifecycle.shadow_client import ledger_projects, ledger_report
from swoosh.workflows.shadow import ShadowReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["report"], help="report: divergences and counters per project")
    parser.add_argument("--project", action="append", default=[], help="only this project (repeatable)")
    parser.add_argument("--limit", type=int, default=20, help="newest divergences shown per project (max 200)")
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")
    parser.add_argument("--address", default=None, help="Temporal address (else settings)")
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--config", default=None, help="TOML settings file (else $SWOOSH_CONFIG)")


async def collect(args: argparse.Namespace) -> list[ShadowReport]:
    settings = Settings.load(config_file=args.config)
    temporal = settings.temporal.model_copy(
        update={
            "address": args.address or settings.temporal.address,
            "namespace": args.namespace or settings.temporal.namespace,
        }
    )
    client = await connect(temporal, encryption=settings.encryption)
    projects = list(args.project) or await ledger_projects(client)
    limit = max(0, min(args.limit, 200))
    reports = []
    for project in projects:
        report = await ledger_report(client, project, limit)
        if report is not None:
            reports.append(report)
    return reports


def totals(reports: list[ShadowReport]) -> dict[str, Any]:
    compared = sum(sum(r.compared.values()) for r in reports)
    diverged = sum(sum(r.diverged.values()) for r in reports)
    by_transition: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for r in reports:
        for name, n in r.diverged.items():
            by_transition[name] = by_transition.get(name, 0) + n
        for kind, n in r.by_kind.items():
            by_kind[kind] = by_kind.get(kind, 0) + n
    return {
        "projects": len(reports),
        "compared": compared,
        "diverged": diverged,
        "by_transition": dict(sorted(by_transition.items())),
        "by_kind": dict(sorted(by_kind.items())),
        "pending": sum(r.pending for r in reports),
        "dropped": sum(r.dropped for r in reports),
    }


def _when(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def render(reports: list[ShadowReport]) -> list[str]:
    lines: list[str] = []
    for r in reports:
        compared, diverged = sum(r.compared.values()), sum(r.diverged.values())
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r.by_kind.items())) or "none"
        lines.append(
            f"{r.project_id}: compared {compared}, diverged {diverged} ({kinds}), "
            f"journal pending {r.pending}, dropped {r.dropped}"
        )
        for d in r.divergences:
            regions = "; ".join(f"{k}: legacy {v[0]} / swoosh {v[1]}" for k, v in d.regions.items())
            lines.append(
                f"  {_when(d.at_ms)} {d.kind:<9} {d.transition} key={d.idem_key} mode={d.mode} "
                f"legacy={d.legacy} swoosh={d.swoosh}" + (f" [{regions}]" if regions else "")
            )
            if d.reason:
                lines.append(f"      {d.reason}")
    t = totals(reports)
    lines.append(
        f"shadow projects={t['projects']} compared={t['compared']} diverged={t['diverged']} "
        f"pending={t['pending']} dropped={t['dropped']}"
    )
    return lines


def main(args: argparse.Namespace) -> int:
    try:
        reports = asyncio.run(collect(args))
    except (RuntimeError, OSError) as err:
        print(f"swoosh shadow: cannot read the ledgers: {err}", file=sys.stderr)
        return 2
    t = totals(reports)
    if args.json:
        print(json.dumps({"totals": t, "projects": [r.model_dump(mode="json") for r in reports]}, indent=2))
    else:
        print("\n".join(render(reports)))
    return 1 if t["diverged"] else 0
