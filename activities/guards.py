"""The guard activity: evaluate a transition's pure guards over the worker's cached facts.

Runs as a local activity (the fast path): facts are fetched out of band by the providers and
cached, so this does no network I/O of its own. Its result is recorded in history, so replays
reuse the outcome instead of re-deciding it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from temporalio import activity

from swoosh.activities.facts import network_allowed
from swoosh.guards.evaluate import evaluate_guards
from swoosh.guards.facts import Facts
from swoosh.workflows.messages import ACTIVITY_GUARDS, GuardRequest, GuardResponse


class FactsSource(Protocol):
    """Where the guard activity gets its facts (the provider cache in production, fixed facts in tests)."""

    async def facts(
        self,
        now_ms: int,
        *,
        network_allowed: bool | None = None,
        inputs: Mapping[str, Any] | None = None,
        evidence: Sequence[str] = (),
    ) -> Facts: ...


class GuardActivities:
    def __init__(self, source: FactsSource) -> None:
        self.source = source

    @activity.defn(name=ACTIVITY_GUARDS)
    async def evaluate(self, request: GuardRequest) -> GuardResponse:
        # The project's own licence gate decides whether other providers may be asked (brief §9).
        facts = await self.source.facts(
            request.now_ms,
            network_allowed=network_allowed(request.state),
            inputs=request.inputs,
            evidence=request.context.evidence,
        )
        outcomes = evaluate_guards(request.guards, request.state, request.inputs, facts, request.context)
        return GuardResponse(outcomes=outcomes)
