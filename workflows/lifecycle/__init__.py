"""The Temporal side of a project: the `ProjectLifecycle` workflow and the units it conducts.

`workflow` (the class: run loop, handlers, queries), `outbox` (decision records waiting for the
sink), `delivery` (the pump sending them), `fence` (the task fence), `views` (query answers),
`visibility` (search attributes, UI details), `tuning` (retry policies, patch markers), `sandbox`
(the worker's workflow runner) and `client` (the client-side operations on project workflows).
"""

from swoosh.workflows.lifecycle.visibility import SEARCH_ATTRIBUTES, search_attributes_of
from swoosh.workflows.lifecycle.workflow import ProjectLifecycle

__all__ = ["SEARCH_ATTRIBUTES", "ProjectLifecycle", "search_attributes_of"]
