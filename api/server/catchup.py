"""Catching SWOOSH up on the journal: what the legacy system accepted while SWOOSH applied nothing.

In `bypass` an accepted mutation is journaled in the project's ledger. Before SWOOSH decides anything
else for that project (once the mode has changed), and in a background sweep of every project when the
mode leaves `bypass`, the journal is applied in order; what SWOOSH refuses is a `catch_up` divergence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import Client

from swoosh.api.server import jsonlog
from swoosh.api.server.gateway import Gateway, TransitionOutcome
from swoosh.api.server.migration import MigrationService
from swoosh.api.server.mutation import swoosh_result
from swoosh.api.server.problems import HttpProblem, NotFoundProblem
from swoosh.api.server.signing import LegacyProposal
from swoosh.workflows.lifecycle.shadow_client import ledger_caught_up, ledger_journal, ledger_lookup, ledger_projects
from swoosh.workflows.migration import MigrationConfig
from swoosh.workflows.proposal import ProposalRequest
from swoosh.workflows.shadow import CatchUp, Divergence, JournalEntry, Lookup

T = TypeVar("T")


class JournalCatchUp:
    """Applies projects' journals in order, one catch-up per project at a time."""

    def __init__(self, gateway: Gateway, migration: MigrationService) -> None:
        self.gateway = gateway
        self.migration = migration
        self._catchup_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def cancel(self) -> None:
        """Stop the background sweeps (the app is closing)."""
        for task in list(self._tasks):
            task.cancel()

    async def _ledger(self, project_id: str, fn: Callable[[Client], Awaitable[T]]) -> T:
        """A ledger call with Temporal's errors translated (unreachable: 503, nothing decided)."""
        return await self.gateway._call(project_id, self.gateway.query_timeout_s, fn)

    async def catch_up(self, project_id: str, config: MigrationConfig) -> None:
        """Apply the project's journal in order (what the legacy system accepted while SWOOSH applied nothing)."""
        lock = self._catchup_locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            tq = self.gateway.task_queue
            entries = await self._ledger(project_id, lambda c: ledger_journal(c, project_id))
            if not entries:
                return
            outcomes: dict[str, str] = {}
            divergences: list[Divergence] = []
            through = 0
            for entry in entries:
                try:
                    outcome = await self._apply_entry(project_id, entry)
                except HttpProblem:
                    break  # SWOOSH cannot apply now: the rest waits, in order
                ok, result = swoosh_result(outcome)
                outcomes[entry.idem_key] = result
                through = entry.seq
                if not ok:
                    reason = str(getattr(outcome.answer, "reason", "") or "")
                    divergences.append(
                        Divergence(
                            idem_key=entry.idem_key,
                            transition=entry.transition,
                            kind="catch_up",
                            mode=config.mode,
                            legacy="accepted",
                            swoosh=result,
                            reason=f"applied after the legacy system accepted it (journaled): {reason}"[:300],
                        )
                    )
            if through:
                done = CatchUp(through_seq=through, outcomes=outcomes, divergences=divergences)
                await self._ledger(project_id, lambda c: ledger_caught_up(c, project_id, tq, done))
                for d in divergences:
                    self.gateway.metrics.divergences.labels(transition=self.gateway.metrics.known(d.transition)).inc()
            if len(self._catchup_locks) > 10_000:
                self._catchup_locks.clear()

    async def catch_up_all(self) -> dict[str, int]:
        """Catch every project with a journal up (after a bypass); what was done, in numbers."""
        config = await self.migration.current()
        projects = await self.gateway._call(None, self.gateway.query_timeout_s, ledger_projects)
        caught, left = 0, 0
        for project_id in projects:
            lookup = await self._pending(project_id)
            if lookup is None or not lookup.pending:
                continue
            await self.catch_up(project_id, config)
            after = await self._pending(project_id)
            caught += lookup.pending - (after.pending if after else 0)
            left += after.pending if after else 0
        return {"projects": len(projects), "applied": caught, "pending": left}

    async def _pending(self, project_id: str) -> Lookup | None:
        return await self._ledger(project_id, lambda c: ledger_lookup(c, project_id, ""))

    def catch_up_soon(self) -> None:
        """Catch every project up in the background (the mode just left bypass)."""
        task = asyncio.create_task(self._sweep())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep(self) -> None:
        try:
            done = await self.catch_up_all()
        except Exception as err:  # a sweep that fails leaves the journals for the next mutation or sweep
            jsonlog.event(f"catch-up sweep stopped: {type(err).__name__}", event="catch_up_sweep_failed")
            return
        jsonlog.event(
            f"catch-up sweep: {done['applied']} journaled mutations applied, {done['pending']} pending",
            event="catch_up_sweep",
            projects=done["projects"],
            applied=done["applied"],
            pending=done["pending"],
        )

    async def _apply_entry(self, project_id: str, entry: JournalEntry) -> TransitionOutcome:
        try:
            return await self._apply_journaled(project_id, entry)
        except NotFoundProblem:
            # The legacy system accepted the project's first mutations while SWOOSH applied nothing.
            if self.gateway.keyring is None:
                raise
            await self.gateway.create_project(project_id)
            return await self._apply_journaled(project_id, entry)

    async def _apply_journaled(self, project_id: str, entry: JournalEntry) -> TransitionOutcome:
        started = time.monotonic()
        if entry.signer is not None and entry.token_label is not None and self.gateway.signing is not None:
            delegation = self.gateway.signing.delegation(entry.signer, entry.token_label)
            if delegation is not None:
                legacy = LegacyProposal.read(entry.body, entry.header_fields, project_id)
                return await self.gateway.propose_legacy(legacy, delegation, started)
        request = ProposalRequest(body=entry.body, header_fields=entry.header_fields, project_id=project_id)
        return await self.gateway.propose_signed(project_id, request, started)
