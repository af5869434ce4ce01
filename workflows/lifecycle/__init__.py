"""The Temporal side of a project: the `ProjectLifecycle` workflow and the units it conducts.

`workflow` (the class: run loop, handlers, queries), `guarding` (the guard local activity and the
Update failures), `outbox` (decision records waiting for the sink), `delivery` (the pump sending
them), `fence` (the task fence), `views` (query answers), `visibility` (search attributes, UI
details), `tuning` (retry policies, patch markers), `sandbox` (the worker's workflow runner) and
`client` (the client-side operations on project workflows); `migration`, `shadow` (and their
`_client` modules): the migration control workflow and the projects' migration ledgers.
"""

from swoosh.workflows.lifecycle.migration import MigrationControl
from swoosh.workflows.lifecycle.shadow import ShadowLedger
from swoosh.workflows.lifecycle.visibility import SEARCH_ATTRIBUTES, search_attributes_of
from swoosh.workflows.lifecycle.workflow import ProjectLifecycle

# Every workflow a SWOOSH worker runs: the projects, the migration control workflow, the projects' ledgers.
WORKFLOWS = (ProjectLifecycle, MigrationControl, ShadowLedger)

__all__ = [
    "SEARCH_ATTRIBUTES",
    "WORKFLOWS",
    "MigrationControl",
    "ProjectLifecycle",
    "ShadowLedger",
    "search_attributes_of",
]
