"""The shadow comparison: SWOOSH's verdict on what the legacy system just decided, and where they differ.

In `shadow` (and for unrouted prefixes in `route`) the legacy system decides; then SWOOSH applies what
it accepted, or dry-runs what it rejected (guards included, nothing applied), compares the decisions
and, with `state_map`, the phases of the regions the transition touches. The result is the key's
`Settlement` in the project's ledger, with any divergence.
"""

from __future__ import annotations

import asyncio
from typing import Any

from swoosh.api.models import RejectionBody
from swoosh.api.server import jsonlog
from swoosh.api.server.gateway import Gateway, TransitionOutcome
from swoosh.api.server.legacy import LegacyAnswer, LegacyClient, LegacyUnavailable, dig
from swoosh.api.server.migration import MigrationSettings
from swoosh.api.server.mutation import Mutation, journal_entry, swoosh_result
from swoosh.api.server.problems import NotFoundProblem, UnavailableProblem
from swoosh.api.server.signing import Delegation
from swoosh.workflows.answers import DryRunAnswer
from swoosh.workflows.migration import MigrationConfig
from swoosh.workflows.shadow import Divergence, DivergenceKind, Settlement
from swoosh.workflows.statechart import default_statechart

PHASES = ("top", "boot", "ingestion", "council", "environment", "execution")  # the phases GET /state shows


def regions_of(transition: str) -> list[str]:
    """The phases a transition can change (its machine, its region, the machines its effects set), by the
    names `GET /state` gives them."""
    t = default_statechart().transitions.get(transition)
    if t is None:
        return []
    machines = [t.spec.machine, t.spec.epoch]
    for effect in t.spec.effects:
        if effect.op == "set_phase" and effect.machine:
            machines.append(effect.machine)
        elif effect.op == "enter_regions":
            machines.extend(effect.machines)
        elif effect.op in ("quarantine", "release"):
            machines.append("top")
    phases = [m if m in PHASES else None for m in machines]
    return [p for p in dict.fromkeys(phases) if p is not None]


class ShadowComparison:
    """Settles a legacy-decided mutation: applied or dry-run in SWOOSH, then compared."""

    def __init__(self, gateway: Gateway, legacy: LegacyClient, settings: MigrationSettings) -> None:
        self.gateway = gateway
        self.legacy = legacy
        self.settings = settings

    async def settlement(
        self, m: Mutation, config: MigrationConfig, delegation: Delegation | None, legacy: LegacyAnswer, started: float
    ) -> Settlement:
        """The key's settlement once the legacy system answered `legacy`: SWOOSH's result, any divergence."""
        assert m.idem_key is not None
        base = {
            "idem_key": m.idem_key,
            "transition": m.transition,
            "legacy_status": legacy.status,
            "legacy_accepted": legacy.accepted,
        }

        def diverged(
            kind: DivergenceKind, swoosh: str, reason: str, regions: dict[str, list[str | None]] | None = None
        ) -> Divergence:
            return Divergence(
                idem_key=m.idem_key or "",
                transition=m.transition,
                kind=kind,
                mode=config.mode,
                legacy=legacy.describe(),
                swoosh=swoosh,
                regions=regions or {},
                reason=reason,
            )

        if m.legacy is not None and delegation is None:
            d = diverged(
                "unapplied",
                "cannot apply",
                "a legacy body from a token bound to no gateway identity: SWOOSH cannot sign it",
            )
            return Settlement(**base, swoosh="unsigned", compared=True, divergences=[d])
        if not legacy.accepted:
            verdict = await self._would(m, delegation)
            if verdict is None:
                d = diverged(
                    "decision", "would accept", "the legacy system rejected it; a dry run in SWOOSH accepts it"
                )
                return Settlement(**base, swoosh="would_accept", compared=True, divergences=[d])
            return Settlement(**base, swoosh=verdict, compared=True)
        try:
            outcome = await self._apply(m, delegation, started)
        except (UnavailableProblem, LegacyUnavailable) as err:
            # SWOOSH could not apply it now: journal it, so it is applied before anything else later.
            journal = journal_entry(m, delegation)
            jsonlog.event(f"shadow apply deferred: {err.reason}", event="shadow_deferred", project_id=m.project_id)
            return Settlement(**base, swoosh="deferred", journal=journal)
        ok, result = swoosh_result(outcome)
        if not ok:
            reason = str(getattr(outcome.answer, "reason", "") or "")
            return Settlement(
                **base, swoosh=result, compared=True, divergences=[diverged("decision", result, reason[:300])]
            )
        divergences = await self._compare_states(m, config, legacy, diverged)
        return Settlement(**base, swoosh=result, compared=True, divergences=divergences)

    async def _apply(self, m: Mutation, delegation: Delegation | None, started: float) -> TransitionOutcome:
        """Apply in SWOOSH (creating the project when the keyring allows it, as the legacy system would)."""
        for attempt in (0, 1):
            try:
                if m.request is not None:
                    return await self.gateway.propose_signed(m.project_id, m.request, started)
                assert m.legacy is not None and delegation is not None
                return await self.gateway.propose_legacy(m.legacy, delegation, started)
            except NotFoundProblem:
                if attempt or self.gateway.keyring is None:
                    raise
                await self.gateway.create_project(m.project_id)
        raise AssertionError("unreachable")

    async def _would(self, m: Mutation, delegation: Delegation | None) -> str | None:
        """SWOOSH's verdict on a mutation without applying it (a dry run, guards included):
        None = it would accept it, else `would_reject:<code>`."""
        try:
            if m.request is not None:
                outcome = await self.gateway.dry_run_signed(m.project_id, m.request)
            else:
                assert m.legacy is not None and delegation is not None
                outcome = await self.gateway.dry_run_legacy(m.legacy, delegation)
        except NotFoundProblem:
            return "would_reject:not_found"
        answer = outcome.answer
        if isinstance(answer, DryRunAnswer):
            return None if answer.accepted else f"would_reject:{answer.error}"
        return f"would_reject:{getattr(answer, 'error', 'schema')}"

    async def _compare_states(
        self, m: Mutation, config: MigrationConfig, legacy: LegacyAnswer, diverged: Any
    ) -> list[Divergence]:
        mapping = self.settings.state_map
        regions = [r for r in regions_of(m.transition) if r in mapping]
        if not regions or config.legacy_url is None:
            return []
        legacy_state, swoosh_state = await asyncio.gather(
            self.legacy.state(config.legacy_url, m.project_id), self.gateway.state(m.project_id, "meta")
        )
        if legacy_state is None or isinstance(swoosh_state, RejectionBody):
            return []
        differ: dict[str, list[str | None]] = {}
        for region in regions:
            rule = mapping[region]
            raw = dig(legacy_state, rule.path)
            theirs = None if raw is None else rule.values.get(str(raw), str(raw))
            ours = swoosh_state.phase.get(region)
            if theirs != ours:
                differ[region] = [theirs, ours]
        if not differ:
            return []
        text = ", ".join(f"{r}: legacy {a}, SWOOSH {b}" for r, (a, b) in differ.items())
        return [diverged("state", "accepted", f"phases differ after it: {text}", differ)]
