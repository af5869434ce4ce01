"""The gateway's settings and its one way of calling Temporal: a timeout, and every error translated.

`GatewayCore._call` runs a client-side operation (`workflows.lifecycle.client`) under a timeout and
maps whatever Temporal raises to the API's problems (404/409/429/503, 500 for anything else;
`translate` in `problems.py`); reads (`gateway_reads.py`) and transitions (`gateway.py`) build on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from temporalio.client import Client

from swoosh.api.models import RejectionBody
from swoosh.api.server.admission import Admission
from swoosh.api.server.metrics import ApiMetrics
from swoosh.api.server.problems import HttpProblem, NotFoundProblem, QueryFailed, translate
from swoosh.api.server.quota import ProjectQuota
from swoosh.api.server.signing import SigningGateway
from swoosh.api.server.sources import ClientSource, DecisionPages, WindowSource
from swoosh.workflows.engine import EngineConfig
from swoosh.workflows.ids import is_project_id
from swoosh.workflows.keyring import Keyring
from swoosh.workflows.lifecycle.client import read_head
from swoosh.workflows.messages import HeadView, LifecycleSettings
from swoosh.workflows.replay.timetravel import PastStates

T = TypeVar("T")


@dataclass
class GatewayCore:
    """What the gateway was built with, and the call every one of its operations goes through."""

    source: ClientSource
    task_queue: str
    keyring: Keyring | None
    default_project: str
    admission: Admission = field(default_factory=Admission)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    engine_config: EngineConfig | None = None
    lifecycle_settings: LifecycleSettings | None = None
    update_timeout_s: float = 60.0
    query_timeout_s: float = 15.0
    exhausted_retries: int = 3
    decision_store: DecisionPages | None = None  # None: only the records the workflow still holds
    windows: WindowSource | None = None  # None: this API cannot tell callers about BACKBEAT windows
    quota: ProjectQuota = field(default_factory=lambda: ProjectQuota(None))
    past: PastStates = field(default_factory=PastStates)
    past_timeout_s: float = 120.0  # rebuilding an old state may read a few megabytes of history
    signing: SigningGateway | None = None  # legacy bodies of tokens bound to a gateway identity

    # ------------------------------------------------------------------ plumbing
    async def _call(self, project_id: str | None, timeout_s: float, fn: Callable[[Client], Awaitable[T]]) -> T:
        client = await self.source.get()
        try:
            async with asyncio.timeout(timeout_s):
                return await fn(client)
        except HttpProblem:
            raise
        except Exception as err:
            mapped = translate(err, project_id)
            if mapped is err:
                raise
            raise mapped from None

    async def head(self, project_id: str) -> HeadView | None:
        """The head for a rejection answer: NotFoundProblem propagates; an unreachable Temporal gives None."""
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))
        except NotFoundProblem:
            raise
        except (HttpProblem, QueryFailed):
            return None

    async def schema_rejection(self, project_id: str | None, reason: str) -> RejectionBody:
        head = await self.head(project_id) if project_id is not None and is_project_id(project_id) else None
        if head is None:
            return RejectionBody.schema_error(reason, None)
        return RejectionBody.schema_error(reason, head.hash, quarantined=head.top == "QUARANTINED")
