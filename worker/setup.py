"""`swoosh setup`: prepare a namespace (and the decision-record store) for SWOOSH, idempotently.

Checks that the namespace exists, registers SWOOSH's search attributes that are missing, prepares
the configured decision-record store (its `setup()`: a folder, a schema) and says what it did. Run
it once per namespace before the first worker or API starts, and again after an upgrade: what is
already there is left as it is.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from swoosh.activities.decisions import decision_store
from swoosh.worker.settings import Settings
from swoosh.workflows.lifecycle.connection import connect, resolve
from swoosh.workflows.lifecycle.namespace import (
    SetupRequired,
    ensure_search_attributes,
    namespace_problem,
    search_attribute_report,
    type_name,
    wanted,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="TOML settings file (else $SWOOSH_CONFIG)")


async def run_setup(settings: Settings) -> list[str]:
    """Prepare the namespace and the store; one line per thing checked or done. Raises SetupRequired."""
    target = resolve(settings.temporal)
    client = await connect(settings.temporal, encryption=settings.encryption)
    lines = []
    problem = await namespace_problem(client)
    if problem is not None:
        raise SetupRequired(problem)
    lines.append(f"namespace {target.namespace!r} on {target.address} (TLS {target.tls_mode}): exists")
    added, before = await ensure_search_attributes(client)
    if added:
        after = await search_attribute_report(client)
        for _ in range(50):  # visibility may take a moment to list what was just added
            if not after.missing:
                break
            await asyncio.sleep(0.1)
            after = await search_attribute_report(client)
        if after.missing:
            raise SetupRequired(f"added search attributes are not listed yet: {', '.join(after.missing)}; run again")
        shown = ", ".join(f"{n} ({type_name(wanted()[n])})" for n in added)
        lines.append(f"search attributes: added {shown}")
    if before.present:
        lines.append(f"search attributes: already present {', '.join(before.present)}")
    store = decision_store(settings.records, Path(settings.data_dir))
    try:
        lines.append(await store.setup())
    finally:
        await store.aclose()
    return lines


def main(args: argparse.Namespace) -> int:
    settings = Settings.load(config_file=args.config)
    for line in asyncio.run(run_setup(settings)):
        print(f"swoosh setup: {line}", flush=True)
    print("swoosh setup: done", flush=True)
    return 0
