"""The guard activity: evaluate a transition's pure guards over the worker's cached facts.

Runs as a local activity (the fast path): facts are fetched out of band by the providers and
cached, so this does no network I/O of its own. Its result is recorded in history, so replays
reuse the outcome instead of re-deciding it.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from guards.evaluate import evaluate_guards
from guards.facts import Facts
from workflows.messages import ACTIVITY_GUARDS, GuardRequest, GuardResponse


class FactsSource(Protocol):
    """Where the guard activity gets its facts (the provider cache in production, fixed facts in tests)."""

    async def facts(self, now_ms: int) -> Facts: ...


class GuardActivities:
    def __init__(self, source: FactsSource) -> None:
        self.source = source

    @activity.defn(name=ACTIVITY_GUARDS)
    async def evaluate(self, request: GuardRequest) -> GuardResponse:
        facts = await self.source.facts(request.now_ms)
        outcomes = evaluate_guards(request.guards, request.state, request.inputs, facts, request.context)
        return GuardResponse(outcomes=outcomes)
