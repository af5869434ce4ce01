"""Client-side operations on projects' migration ledgers (`ShadowLedger` workflows)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from swoosh.workflows.lifecycle.shadow import (
    LEDGER_WORKFLOW,
    ClaimAnswer,
    ClaimRequest,
    LedgerInput,
    ShadowLedger,
    ledger_id,
)
from swoosh.workflows.shadow import CatchUp, JournalEntry, LedgerState, Lookup, Settlement, ShadowReport

T = TypeVar("T")


def ledger_handle(client: Client, project_id: str) -> WorkflowHandle[ShadowLedger, None]:
    return client.get_workflow_handle_for(ShadowLedger.run, ledger_id(project_id))


async def _or_none(read: Callable[[], Awaitable[T]]) -> T | None:
    """A query's answer, or None when the project has no ledger (nothing was ever claimed for it)."""
    try:
        return await read()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def ledger_lookup(client: Client, project_id: str, idem_key: str) -> Lookup | None:
    return await _or_none(lambda: ledger_handle(client, project_id).query(ShadowLedger.lookup, idem_key))


async def ledger_report(client: Client, project_id: str, limit: int = 50) -> ShadowReport | None:
    return await _or_none(lambda: ledger_handle(client, project_id).query(ShadowLedger.report, limit))


async def ledger_journal(client: Client, project_id: str) -> list[JournalEntry]:
    entries = await _or_none(lambda: ledger_handle(client, project_id).query(ShadowLedger.journal))
    return entries or []


def _start(project_id: str, task_queue: str) -> WithStartWorkflowOperation[ShadowLedger, None]:
    return WithStartWorkflowOperation(
        ShadowLedger.run,
        LedgerInput(state=LedgerState(project_id=project_id)),
        id=ledger_id(project_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"SWOOSH migration ledger of project {project_id}",
    )


async def ledger_claim(client: Client, project_id: str, task_queue: str, idem_key: str, transition: str) -> ClaimAnswer:
    """Claim `idem_key` for the legacy system (or get the existing claim); the ledger is created if needed."""
    return await client.execute_update_with_start_workflow(
        ShadowLedger.claim,
        ClaimRequest(idem_key=idem_key, transition=transition),
        start_workflow_operation=_start(project_id, task_queue),
    )


async def ledger_settle(client: Client, project_id: str, task_queue: str, settlement: Settlement) -> Lookup:
    return await client.execute_update_with_start_workflow(
        ShadowLedger.settle, settlement, start_workflow_operation=_start(project_id, task_queue)
    )


async def ledger_caught_up(client: Client, project_id: str, task_queue: str, done: CatchUp) -> Lookup:
    return await client.execute_update_with_start_workflow(
        ShadowLedger.caught_up, done, start_workflow_operation=_start(project_id, task_queue)
    )


async def ledger_projects(client: Client, limit: int = 1000) -> list[str]:
    """Projects that have a ledger (visibility), for reports across projects."""
    out: list[str] = []
    async for wf in client.list_workflows(f"WorkflowType = '{LEDGER_WORKFLOW}'"):
        project = wf.id.removeprefix("swoosh-shadow-")
        if project not in out:
            out.append(project)
        if len(out) >= limit:
            break
    return sorted(out)
