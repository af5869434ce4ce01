"""What `state?at=N` costs on a 10,000-transition project: `python -m tests.bench.timetravel_bench`.

Not part of `make test`. Starts a Temporal dev server (SQLite file) and a worker in this process,
drives one project with default settings (a snapshot every 500 transitions, or at REVERB once 100
transitions passed: about one run per 100 transitions) to 10,000 accepted transitions, then times
`PastStates.state_at` for an index near the start, the middle and the end of the history:

- cold: a fresh cache (what the first request after an API start pays);
- warm: the same cache, another index in the same run (the run's facts are cached once finished);
- repeat: the same index again (the computed state is cached).

For comparison it also times the fold from genesis over every run (what `swoosh replay` does).
Last line: `timetravel transitions=<n> runs=<r> cold_ms=<start>/<middle>/<end> warm_ms=… repeat_ms=…`.
`--db FILE` keeps the dev server's database, so a second run measures the same project again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from swoosh.api.client import ProposalFactory, Signers
from swoosh.workflows.answers import Accepted, Rejected
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import ensure_project, read_decisions, read_health
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.replay.fold import fold
from swoosh.workflows.replay.history import fetch_project_runs, run_facts
from swoosh.workflows.replay.timetravel import PastStates
from swoosh.workflows.testing.driver import LifecycleDriver
from swoosh.workflows.testing.environment import FakeFacts, binary, lifecycle_worker, search_attribute_flags

RESENDS = {"n": 0}


async def build(client: object, project: str, target: int, signers: Signers, facts: FakeFacts, tq: str) -> int:
    factory = ProposalFactory(signers, project)
    await ensure_project(client, project, signers.keyring(), tq)  # type: ignore[arg-type]
    driver = LifecycleDriver.for_client(client, factory, open_window=facts.open_window)  # type: ignore[arg-type]
    send = driver.send

    async def patient(req: ProposalRequest) -> Accepted | Rejected:
        # On a loaded machine a workflow task can time out; the server then refuses Updates until the
        # retried task completes. A caller resends the same proposal (its idem_key makes that safe).
        for attempt in range(30):
            try:
                return await send(req)
            except RPCError as err:
                if err.status != RPCStatusCode.FAILED_PRECONDITION or attempt == 29:
                    raise
                RESENDS["n"] += 1
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")

    driver.send = patient
    await driver.lifecycle()
    started, last = time.monotonic(), 0
    while len(driver.answers) < target:
        await driver.loop(1)
        n = len(driver.answers)
        if n - last >= 1000:
            last = n
            print(f"  {n} transitions, {n / (time.monotonic() - started):.0f}/s", file=sys.stderr, flush=True)
    return len(driver.answers)


async def timed(past: PastStates, client: object, project: str, index: int) -> tuple[float, int, int]:
    """(ms, history requests, transitions folded) of one state_at."""
    before = past.fetches
    t0 = time.perf_counter()

    async def more(after: int, limit: int) -> list[dict[str, object]]:
        return (await read_decisions(client, project, after, min(limit, 1000))).records  # type: ignore[arg-type]

    state = await past.state_at(client, project, index, more_records=more)  # type: ignore[arg-type]
    return (time.perf_counter() - t0) * 1000, past.fetches - before, state.folded


async def main(target: int = 10_000, db: Path | None = None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        reuse = db is not None and db.exists()
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"),
            dev_server_database_filename=str(db or root / "temporal.db"),
            dev_server_extra_args=[*search_attribute_flags(), "--log-level", "error"],
            data_converter=pydantic_data_converter,
            ui=False,
        )
        try:
            client = env.client
            facts, signers = FakeFacts(), Signers.generate()
            project = "timetravel-10k"
            # Reusing a database: serve the task queue its project's workflow was started on.
            queue = (await client.get_workflow_handle(workflow_id(project)).describe()).task_queue if reuse else None
            async with lifecycle_worker(client, facts=facts, sink_dir=root / "decisions", task_queue=queue) as tq:
                t0 = time.monotonic()
                if reuse:  # a database an earlier run built: measure it again
                    n = (await read_health(client, project)).index
                else:
                    n = await build(client, project, target, signers, facts, tq)
                build_s = time.monotonic() - t0
                health = await read_health(client, project)
                print(
                    f"built {n} transitions in {build_s:.0f} s; {health.runs + 1} runs; "
                    f"{RESENDS['n']} resends after a refused Update",
                    flush=True,
                )
                points = {"start": 10, "middle": n // 2, "end": n - 10}
                cold, warm, repeat = {}, {}, {}
                for name, index in points.items():
                    cold[name] = await timed(PastStates(), client, project, index)
                shared = PastStates()
                for name, index in points.items():
                    await timed(shared, client, project, index)
                    warm[name] = await timed(shared, client, project, index + 3)
                    repeat[name] = await timed(shared, client, project, index)
                for label, table in (("cold", cold), ("warm", warm), ("repeat", repeat)):
                    for name, (ms, fetches, folded) in table.items():
                        print(
                            f"  {label:<6} {name:<6} index {points[name]:>5}: {ms:8.1f} ms, "
                            f"{fetches:>3} history requests, {folded:>3} transitions folded",
                            flush=True,
                        )
                t0 = time.perf_counter()
                runs = [run_facts(h) for h in await fetch_project_runs(client, workflow_id(project))]
                fetched = time.perf_counter() - t0
                result = fold(runs)
                folded = time.perf_counter() - t0
                print(
                    f"  fold from genesis over {len(runs)} runs (swoosh replay's way): fetch {fetched * 1000:.0f} ms, "
                    f"total {folded * 1000:.0f} ms, ok={result.ok}",
                    flush=True,
                )

                def ms(t: dict[str, tuple[float, int, int]]) -> str:
                    return "/".join(f"{t[k][0]:.0f}" for k in points)

                print(
                    f"timetravel transitions={n} runs={health.runs + 1} cold_ms={ms(cold)} warm_ms={ms(warm)} "
                    f"repeat_ms={ms(repeat)}",
                    flush=True,
                )
        finally:
            await env.shutdown()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m tests.bench.timetravel_bench")
    parser.add_argument("transitions", type=int, nargs="?", default=10_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="keep the dev server's SQLite file here (reused if present)"
    )
    cli = parser.parse_args()
    sys.exit(asyncio.run(main(cli.transitions, cli.db)))
