"""How many projects this SWOOSH runs at most: the project-count quota of `PUT /v1/projects/{id}`.

The count is Temporal's own: running project workflows, by a visibility count query. Visibility is
eventually consistent: a workflow just started may not be counted yet (seen on the dev server at about
14 creations/s: 10,001 projects under a quota of 10,000). So within one API replica, creations are
serialised and each waits, still holding the turn, until visibility counts it (at most `settle_s`,
then it goes on and says so in the log): count, start, settle, one at a time, so a replica does not
pass the quota. Several replicas each do that, but two of them may count before either start is
visible: the quota can then be passed by the creations that race within visibility's delay (at most
one per other replica and round). It is a ceiling against runaway creation by a buggy or hostile admin
client, not an exact invariant across replicas; a project that runs already is answered 200 whatever
the count.
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


SETTLE_S = 2.0
SETTLE_POLL_S = 0.05


class ProjectQuota:
    """At most `limit` running projects (None: no quota); `lock` serialises this replica's creations."""

    def __init__(self, limit: int | None, settle_s: float = SETTLE_S) -> None:
        self.limit = limit
        self.settle_s = settle_s
        self.lock = asyncio.Lock()

    async def check(self, client: Client) -> int | None:
        """Raise QuotaProblem when another project would pass the quota (call with `lock` held).

        The running projects counted, for `settled`; None when nothing is counted (no quota, or a
        server without visibility counts)."""
        if self.limit is None:
            return None
        try:
            running = (await client.count_workflows(RUNNING_PROJECTS)).count
        except RPCError as err:
            if err.status != RPCStatusCode.UNIMPLEMENTED:
                raise
            # A server without visibility counts (the time-skipping test server): nothing to count on.
            log.warning("project quota not enforced: the Temporal server cannot count workflows")
            return None
        if running >= self.limit:
            raise QuotaProblem(
                f"{running} projects run and the quota is {self.limit} (SWOOSH_API_MAX_PROJECTS): "
                "let one finish, or raise the quota"
            )
        return running

    async def settled(self, client: Client, counted: int | None) -> None:
        """After a start (call with `lock` held): wait until visibility counts more than `counted`.

        Bounded by `settle_s`: a project that ended meanwhile keeps the count from growing, and then
        the next creation counts from what visibility shows (logged, as it may pass the quota by one).
        """
        if counted is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_s
        while True:
            if (await client.count_workflows(RUNNING_PROJECTS)).count > counted:
                return
            if loop.time() >= deadline:
                log.warning(
                    "project quota: visibility did not count a new project within %.1f s; "
                    "the next creation counts from what it shows",
                    self.settle_s,
                )
                return
            await asyncio.sleep(SETTLE_POLL_S)
