"""`MigrationControl`: the one workflow (`swoosh-migration`) holding the migration mode for every API replica.

A change is the `change` Update (validated first, so a refused change writes nothing), applied to
the pure `MigrationState` with the workflow's time and audited; `view` is a query replicas cache
briefly. The mode is in the workflow's current details and the `SwooshMigrationMode` search attribute,
so the Temporal UI shows it. Continue-as-new after `CHANGES_PER_RUN` changes carries the state.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict, Field

    from swoosh.workflows.lifecycle.visibility import SA_MIGRATION_MODE
    from swoosh.workflows.migration import MigrationChange, MigrationError, MigrationState, MigrationView

MIGRATION_WORKFLOW = "SwooshMigration"
MIGRATION_WORKFLOW_ID = "swoosh-migration"
UPDATE_CHANGE = "change"
QUERY_VIEW = "view"
REFUSED_ERROR_TYPE = "SwooshMigrationRefused"
CHANGES_PER_RUN = 500


class MigrationInput(BaseModel):
    """Where a run starts: the state (from settings at creation, else the previous run's)."""

    model_config = ConfigDict(extra="forbid")

    state: MigrationState = Field(default_factory=MigrationState)
    runs: int = 0


def mode_attributes(state: MigrationState) -> TypedSearchAttributes:
    return TypedSearchAttributes([SearchAttributePair(SA_MIGRATION_MODE, state.config.describe())])


def details(state: MigrationState) -> str:
    """The workflow's current details (markdown) in the Temporal UI."""
    view = state.view(audit_limit=1)
    last = f"changed by {view.changed_by} at {view.changed_at_ms} ms: {view.reason or '-'}" if view.changed_by else ""
    return (
        f"**migration mode {state.config.describe()}** · version {state.version}\n\n"
        f"legacy {state.config.legacy_url or '-'}\n\n{last}"
    )


@workflow.defn(name=MIGRATION_WORKFLOW)
class MigrationControl:
    @workflow.init
    def __init__(self, inp: MigrationInput) -> None:
        self.state = inp.state.model_copy(deep=True)
        self.runs = inp.runs
        self.changes = 0

    @workflow.run
    async def run(self, inp: MigrationInput) -> None:
        workflow.set_current_details(details(self.state))
        await workflow.wait_condition(lambda: self.changes >= CHANGES_PER_RUN and workflow.all_handlers_finished())
        workflow.continue_as_new(MigrationInput(state=self.state, runs=self.runs + 1))

    @workflow.update(name=UPDATE_CHANGE)
    def change(self, change: MigrationChange) -> MigrationView:
        entry = self.state.apply(change, int(workflow.now().timestamp() * 1000))
        self.changes += 1
        workflow.upsert_search_attributes([SA_MIGRATION_MODE.value_set(self.state.config.describe())])
        workflow.set_current_details(details(self.state))
        workflow.logger.info("migration mode %s -> %s by %s", entry.before.describe(), entry.after.describe(), entry.by)
        return self.state.view()

    @change.validator
    def validate_change(self, change: MigrationChange) -> None:
        """A refused change writes nothing to history."""
        if self.changes >= CHANGES_PER_RUN:
            raise ApplicationError("the control workflow is starting its next run; retry", type=REFUSED_ERROR_TYPE)
        try:
            self.state.check(change)
        except MigrationError as err:
            raise ApplicationError(str(err), type=REFUSED_ERROR_TYPE, non_retryable=True) from None

    @workflow.query(name=QUERY_VIEW)
    def view(self, audit_limit: int = 20) -> MigrationView:
        return self.state.view(max(0, min(audit_limit, 100)))
