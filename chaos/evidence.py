"""Gather a project's evidence for the invariant checker: live histories, the walk, the sink, audit, replay.

The live history of a project is the chain of its runs minus the runs a Temporal reset terminated
(the reset's new run carries the same start snapshot and everything up to the reset point). Those
terminated runs still have to replay: they leave the walk and the fold, never the Replayer check (a
run whose workflow task failed for non-determinism is exactly what a later reset can leave behind).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from swoosh.chaos.callers import ReceivedAnswer
from swoosh.chaos.faults import ResetMark
from swoosh.chaos.invariants import CHART, ProjectEvidence, Step
from swoosh.workflows.engine import Engine
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.lifecycle.client import read_head
from swoosh.workflows.reducer import clone
from swoosh.workflows.replay.audit import audit, read_records
from swoosh.workflows.replay.fold import (
    apply_record,  # the fold's own re-application, shared so both agree
    configs_by_start,
    order_runs,
)
from swoosh.workflows.replay.history import RunFacts, fetch_project_runs, run_facts
from swoosh.workflows.replay.replayer import replay_projects


def is_reset_victim(history: WorkflowHistory) -> bool:
    """A run that ended terminated: SWOOSH never terminates its workflows, only a reset does."""
    events = list(history.events)
    return bool(events) and events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED


def walk(runs: list[RunFacts]) -> tuple[list[Step], dict[int, dict[str, Any]], list[str]]:
    """Re-apply the live history's transitions through the pure engine, keeping the documents around each."""
    runs = order_runs(runs)
    first = runs[0].start
    if first is None:
        return [], {}, ["the first run has no start event"]
    snap = first.snapshot.model_copy(deep=True)
    snap.document = clone(snap.document)
    engine = Engine(CHART, snap)
    records: dict[int, dict[str, Any]] = {}
    proposals: dict[str, list[Any]] = {}
    for run in runs:
        records.update(run.records)
        for key, reqs in run.proposals.items():
            proposals.setdefault(key, []).extend(reqs)
    steps: list[Step] = []
    problems: list[str] = []
    configs = configs_by_start(runs)
    for index in range(engine.index + 1, max(records, default=engine.index) + 1):
        engine.config = configs.get(index - 1, engine.config)
        rec = records.get(index)
        if rec is None:
            problems.append(f"index {index}: no decision record for it anywhere in the live history")
            break
        pre = clone(engine.document)
        problem = apply_record(engine, rec, proposals)
        if problem:
            problems.append(f"index {index} ({rec['transition']}): {problem}")
            break
        inputs = dict(rec.get("system_inputs") or {})
        for req in proposals.get(rec["idem_key"], []):
            body = req.body if isinstance(req.body, dict) else {}
            inputs = dict(body.get("inputs") or {})
            break
        steps.append(Step(rec, pre, clone(engine.document), inputs))
    live = {i: r for i, r in records.items() if i > int(first.snapshot.document["meta"]["index"])}
    return steps, live, problems


async def collect(
    client: Client,
    project_id: str,
    decisions_dir: Path,
    answers: list[ReceivedAnswer],
    resets: list[ResetMark],
    continuous: list[str],
    *,
    sink_records: list[dict[str, Any]] | None = None,
) -> ProjectEvidence:
    """Everything the checker needs of one project; `sink_records` (every record the store holds, in
    index order) replaces reading `<decisions_dir>/<project>.jsonl` when the store is another one."""
    ev = ProjectEvidence(
        project_id=project_id,
        answers=[a for a in answers if a.project_id == project_id],
        resets=[r for r in resets if r.project_id == project_id],
        continuous=[c for c in continuous if c.startswith(f"{project_id} ")],
    )
    desc = await client.get_workflow_handle(workflow_id(project_id)).describe()
    ev.status = desc.status.name if desc.status is not None else "UNKNOWN"
    histories = await fetch_project_runs(client, workflow_id(project_id))
    live = [h for h in histories if not is_reset_victim(h)]
    facts = [run_facts(h) for h in live]
    ev.steps, ev.history_records, ev.walk_problems = walk(facts)
    sink = decisions_dir / f"{project_id}.jsonl"
    if sink_records is not None:
        ev.sink_records = list(sink_records)
    elif sink.exists():
        ev.sink_records = read_records(sink)
    ev.audit_problems = audit(ev.sink_records, live)
    head = (await read_head(client, project_id)).hash
    for report in await replay_projects({project_id: live}, {project_id: head}, converter=client.data_converter):
        ev.replay_problems.extend(report.replay_failures)
        if report.fold is not None:
            ev.replay_problems.extend(report.fold.problems)
            if report.fold.final_hash != report.fold.reported_hash:
                ev.replay_problems.append(
                    f"fold reached {report.fold.final_hash}, the workflow reports {report.fold.reported_hash}"
                )
    victims = [h for h in histories if is_reset_victim(h)]
    if victims:
        for report in await replay_projects({project_id: victims}, do_fold=False, converter=client.data_converter):
            ev.replay_problems.extend(f"reset-terminated {p}" for p in report.replay_failures)
    return ev


__all__ = ["collect", "is_reset_victim", "walk"]
