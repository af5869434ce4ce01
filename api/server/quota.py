"""How many projects this SWOOSH runs at most: the project-count quota of `PUT /v1/projects/{id}`.

The count is Temporal's own: running project workflows, by a visibility count query. Within one
API replica, creations are serialised (count, then start, one at a time), so a replica never
passes the quota. Several replicas each do that, but two of them may count before either start is
visible: the quota can then be passed by the creations that race within visibility's delay (at most
one per other replica and round; none on a SQL-backed or the dev server, where a started workflow
counts at once). It is a ceiling against runaway creation by a buggy or hostile admin client,
not an exact invariant; a project that runs already is answered 200 whatever the count.
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from swoosh.api.server.problems import QuotaProblem
from swoosh.workflows.messages import WORKFLOW_NAME

log = logging.getLogger("swoosh.api")
RUNNING_PROJECTS = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"


class ProjectQuota:
    """At most `limit` running projects (None: no quota); `lock` serialises this replica's creations."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.lock = asyncio.Lock()

    async def check(self, client: Client) -> None:
        """Raise QuotaProblem when another project would pass the quota (call with `lock` held)."""
        if self.limit is None:
            return
        try:
            running = (await client.count_workflows(RUNNING_PROJECTS)).count
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            # A server without visibility counts (the time-skipping test server): nothing to count on.
            log.warning("project quota not enforced: the Temporal server cannot count workflows")
            return
        if running >= self.limit:
            raise QuotaProblem(
                f"{running} projects run and the quota is {self.limit} (SWOOSH_API_MAX_PROJECTS): "
                "let one finish, or raise the quota"
            )
