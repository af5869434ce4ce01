"""Client-side operations on the migration control workflow: create it (idempotent), read it, change it."""

from __future__ import annotations

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from swoosh.workflows.lifecycle.migration import (
    MIGRATION_WORKFLOW_ID,
    REFUSED_ERROR_TYPE,
    MigrationControl,
    MigrationInput,
    mode_attributes,
)
from swoosh.workflows.migration import MigrationChange, MigrationConfig, MigrationError, MigrationState, MigrationView


def migration_handle(client: Client) -> WorkflowHandle[MigrationControl, None]:
    return client.get_workflow_handle_for(MigrationControl.run, MIGRATION_WORKFLOW_ID)


async def ensure_migration(client: Client, task_queue: str, initial: MigrationConfig) -> None:
    """Start the control workflow unless it runs; `initial` (the settings) is its config only at creation."""
    state = MigrationState(config=initial)
    await client.start_workflow(
        MigrationControl.run,
        MigrationInput(state=state),
        id=MIGRATION_WORKFLOW_ID,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=mode_attributes(state),
        static_summary="SWOOSH migration mode (off / shadow / route / bypass)",
        static_details="Held here for every API replica; changed with PUT /v1/migration, audited.",
    )


async def read_migration(client: Client, audit_limit: int = 20) -> MigrationView:
    return await migration_handle(client).query(MigrationControl.view, audit_limit)


async def change_migration(client: Client, change: MigrationChange) -> MigrationView:
    """Apply `change`; MigrationError when the workflow refuses it (nothing changed)."""
    try:
        return await migration_handle(client).execute_update(MigrationControl.change, change)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == REFUSED_ERROR_TYPE:
            raise MigrationError(cause.message) from None
        raise
