"""Mutations routed by the migration mode: SWOOSH decides, or the legacy system decides and SWOOSH shadows it.

Per mutation (a transition body, or a WHOOSH-compatible request mapped onto one transition):

- `off`: SWOOSH decides; nothing else happens (no legacy system, no ledger).
- Otherwise the idempotency key says who owns the mutation. A key the project's ledger has claimed
  for the legacy system goes to the legacy system again in every mode (it answers its own repeat), so
  SWOOSH never decides a legacy answer a second time; a key SWOOSH has applied and the ledger has not
  claimed is SWOOSH's, and is answered by SWOOSH (a duplicate), never sent to the legacy system.
- A new key goes where the mode says (`MigrationConfig.decider`). For the legacy system the key is
  claimed first, then the mutation forwarded as it was sent (unreachable: 503 + Retry-After, the claim
  stays, a resend is forwarded again). In `shadow` (and for unrouted prefixes in `route`), SWOOSH
  then applies what the legacy system accepted — first catching up on anything journaled — or checks,
  without applying, what it rejected, compares the decisions and (with `state_map`) the phases of the
  regions the transition touches, and settles the key in the ledger with any divergence before the
  caller gets the legacy answer. In `bypass` SWOOSH applies nothing: an accepted mutation is journaled,
  and applied in order before SWOOSH decides anything else for that project once the mode changes.

This module reads requests into mutations and routes them; `mutation.py` holds the mutation and the
answers, `shadowing.py` the shadow comparison, `catchup.py` the journal's catch-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

from temporalio.client import Client

from swoosh.api.models import RejectionBody
from swoosh.api.server import jsonlog
from swoosh.api.server.body import decode_body
from swoosh.api.server.catchup import JournalCatchUp
from swoosh.api.server.gateway import Gateway, check_scopes
from swoosh.api.server.legacy import LegacyClient, LegacyUnavailable
from swoosh.api.server.migration import MigrationService, MigrationSettings
from swoosh.api.server.mutation import DECIDED_BY, Answer, Mutation, journal_entry, not_mappable, outcome_answer, relay
from swoosh.api.server.problems import NotFoundProblem, UnavailableProblem
from swoosh.api.server.shadowing import ShadowComparison
from swoosh.api.server.signing import Delegation, LegacyProposal, is_legacy_body
from swoosh.api.server.tokens import ANONYMOUS, Principal
from swoosh.api.server.whoosh import (
    COUNCIL_PATH,
    TASKS_PATH,
    BadRequest,
    NotMappable,
    council_not_active,
    map_council,
    map_task,
)
from swoosh.workflows.errors import ProposalError
from swoosh.workflows.lifecycle.shadow_client import ledger_claim, ledger_lookup, ledger_settle
from swoosh.workflows.migration import MigrationConfig
from swoosh.workflows.proposal import HEADER_FIELDS, ProposalRequest, parse_proposal
from swoosh.workflows.shadow import Divergence, Lookup, Settlement

T = TypeVar("T")


class MigrationRouter:
    """Decides, per mutation, which system decides it; forwards, shadows, journals and catches up."""

    def __init__(
        self,
        gateway: Gateway,
        migration: MigrationService,
        settings: MigrationSettings,
        legacy: LegacyClient | None = None,
    ) -> None:
        self.gateway = gateway
        self.migration = migration
        self.settings = settings
        self.legacy = legacy or LegacyClient(settings)
        self.shadow = ShadowComparison(gateway, self.legacy, settings)
        self.catchup = JournalCatchUp(gateway, migration)
        self._project_locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def aclose(self) -> None:
        self.catchup.cancel()
        await self.legacy.aclose()

    async def _client(self) -> Client:
        return await self.gateway.source.get()

    # ------------------------------------------------------------------ entry points
    async def transition(
        self,
        raw: bytes,
        headers: Mapping[str, str],
        path_project: str | None,
        started: float,
        principal: Principal = ANONYMOUS,
        delegation: Delegation | None = None,
    ) -> Answer:
        """`POST /transition` and `POST /v1/projects/{id}/transition`."""
        try:
            config = await self.migration.current()
        except UnavailableProblem:
            # The mode cannot be read, so nothing can be decided now: answered as SWOOSH answers without
            # Temporal (503 + Retry-After), and bad input still gets its 400.
            config = MigrationConfig()
        if config.mode == "off":
            outcome = await self.gateway.transition(raw, headers, path_project, started, principal, delegation)
            return outcome_answer(outcome)
        mutation = self.read_transition(raw, headers, path_project)
        if isinstance(mutation, Answer):
            return mutation
        check_scopes(principal, mutation.project_id, mutation.transition)
        return await self.route(mutation, config, delegation, started)

    def read_transition(self, raw: bytes, headers: Mapping[str, str], path_project: str | None) -> Mutation | Answer:
        """The mutation a transition body is, or the 400 it gets (the same checks as in `off` mode)."""
        header_fields = {name: headers[h] for h, name in HEADER_FIELDS.items() if h in headers}
        body, problem = decode_body(raw)
        if body is None:
            return self._schema(None, problem or "schema")
        if path_project is not None:
            project_id, addressed = path_project, path_project
        else:
            from_body = body.get("project_id")
            header_project = headers.get("X-Project-Id")
            project_id = from_body if isinstance(from_body, str) else header_project or self.gateway.default_project
            addressed = header_project or project_id
        legacy: LegacyProposal | None = None
        request: ProposalRequest | None = None
        try:
            if is_legacy_body(body):
                legacy = LegacyProposal.read(body, header_fields, project_id)
            else:
                request = ProposalRequest(body=body, header_fields=header_fields, project_id=addressed)
                parse_proposal(request)
        except ProposalError as err:
            return self._schema(project_id, err.reason)
        transition = legacy.transition if legacy else str(body["transition"])
        idem = legacy.idem_key if legacy else body.get("idem_key") or header_fields.get("idem_key")
        return Mutation(project_id, transition, idem, request, legacy, body, header_fields, "/transition", raw, headers)

    async def whoosh(
        self,
        kind: str,
        raw: bytes,
        headers: Mapping[str, str],
        started: float,
        principal: Principal = ANONYMOUS,
        delegation: Delegation | None = None,
    ) -> Answer:
        """`POST /api/v1/opportunities/council` (kind `council`) and `POST /api/v1/tasks` (kind `task`)."""
        body, problem = decode_body(raw)
        if body is None:
            return self._schema(None, problem or "schema")
        header_fields = {name: headers[h] for h, name in HEADER_FIELDS.items() if h in headers}
        project = headers.get("X-Project-Id") or self.gateway.default_project
        try:
            mapped = map_council(body) if kind == "council" else map_task(body, project)
        except BadRequest as err:
            return self._schema(None, err.reason)
        except NotMappable as err:
            return not_mappable(err.reason)
        idem = header_fields.get("idem_key") or mapped.derived_idem_key
        if idem is None:
            return self._schema(mapped.project_id, "the Idempotency-Key header is required (the proposal's idem_key)")
        legacy_body: dict[str, Any] = {"transition": mapped.transition, "inputs": mapped.inputs}
        if mapped.evidence:
            legacy_body["evidence"] = mapped.evidence
        fields = {**header_fields, "idem_key": idem}
        try:
            legacy = LegacyProposal.read(legacy_body, fields, mapped.project_id)
        except ProposalError as err:
            return self._schema(mapped.project_id, err.reason)
        check_scopes(principal, mapped.project_id, mapped.transition)
        path = COUNCIL_PATH if kind == "council" else TASKS_PATH
        m = Mutation(mapped.project_id, mapped.transition, idem, None, legacy, legacy_body, fields, path, raw, headers)
        config = await self.migration.current()
        if kind == "council" and config.decider(mapped.transition) == "swoosh" and delegation is not None:
            await self._ensure_project(mapped.project_id)
        answer = await self.route(m, config, delegation, started)
        decided_here = answer.headers.get(DECIDED_BY) == "swoosh" and isinstance(answer.body, dict)
        if (
            kind == "council"
            and decided_here
            and answer.status == 400
            and answer.body.get("error") == "invalid_transition"
        ):
            state = await self.gateway.state(mapped.project_id, "meta")
            if not isinstance(state, RejectionBody) and (
                state.phase.get("council") != "PLAN_ROLES"
                or state.phase.get("top") not in ("PROJECT_LIFECYCLE", "RECOVERY")
            ):
                return not_mappable(council_not_active(mapped.project_id, state.phase).reason)
        return answer

    async def _ensure_project(self, project_id: str) -> None:
        """The council endpoint creates the project its opportunity names, or finds it."""
        try:
            await self.gateway.read_head_view(project_id)
        except NotFoundProblem:
            await self.gateway.create_project(project_id)

    def _schema(self, project_id: str | None, reason: str) -> Answer:
        rejection = RejectionBody.schema_error(reason, None)
        jsonlog.rejected(project_id, None, None, rejection)
        return Answer(400, rejection.model_dump(mode="json"))

    # ------------------------------------------------------------------ routing
    async def route(
        self, m: Mutation, config: MigrationConfig, delegation: Delegation | None, started: float
    ) -> Answer:
        if config.mode == "off":
            return await self._swoosh(m, delegation, started)
        if not m.idem_key:
            return self._schema(
                m.project_id, f"an idempotency key (Idempotency-Key) is required in migration mode {config.mode}"
            )
        idem = m.idem_key
        lookup, seen = await asyncio.gather(
            self._ledger(m.project_id, lambda c: ledger_lookup(c, m.project_id, idem)),
            self.gateway.seen(m.project_id, m.idem_key),
        )
        owned_by_legacy = lookup is not None and lookup.claim is not None
        decider = "legacy" if owned_by_legacy else ("swoosh" if seen is not None else config.decider(m.transition))
        self.gateway.metrics.decided.labels(decider=decider, mode=config.mode).inc()
        if decider == "swoosh":
            if lookup is not None and lookup.pending and config.mode != "bypass":
                await self.catchup.catch_up(m.project_id, config)
            return await self._swoosh(m, delegation, started)
        return await self._legacy(m, config, delegation, started, lookup)

    async def _ledger(self, project_id: str, fn: Callable[[Client], Awaitable[T]]) -> T:
        """A ledger call with Temporal's errors translated (unreachable: 503, nothing decided)."""
        return await self.gateway._call(project_id, self.gateway.query_timeout_s, fn)

    async def _swoosh(self, m: Mutation, delegation: Delegation | None, started: float) -> Answer:
        if m.request is not None:
            return outcome_answer(await self.gateway.propose_signed(m.project_id, m.request, started))
        assert m.legacy is not None
        if delegation is None:
            rejection = RejectionBody(
                error="unauthorized_signer",
                reason="this body has no signature and the bearer token is not bound to a gateway identity "
                "that could sign it (docs/migration.md, signing gateway)",
                head_hash=None,
            )
            return Answer(400, rejection.model_dump(mode="json"), {DECIDED_BY: "swoosh"})
        return outcome_answer(await self.gateway.propose_legacy(m.legacy, delegation, started))

    @contextlib.asynccontextmanager
    async def _serial(self, project_id: str) -> AsyncIterator[None]:
        """One legacy-decided mutation per project at a time here: both systems see them in the same order."""
        lock, users = self._project_locks.get(project_id, (asyncio.Lock(), 0))
        self._project_locks[project_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._project_locks[project_id]
            if users <= 1:
                del self._project_locks[project_id]
            else:
                self._project_locks[project_id] = (lock, users - 1)

    async def _legacy(
        self,
        m: Mutation,
        config: MigrationConfig,
        delegation: Delegation | None,
        started: float,
        lookup: Lookup | None,
    ) -> Answer:
        assert config.legacy_url is not None and m.idem_key is not None
        tq, idem = self.gateway.task_queue, m.idem_key
        async with self._serial(m.project_id):
            if lookup is None or lookup.claim is None:
                claimed = await self._ledger(
                    m.project_id, lambda c: ledger_claim(c, m.project_id, tq, idem, m.transition)
                )
                pending = claimed.pending
            else:
                pending = lookup.pending
            try:
                answer = await self.legacy.post(config.legacy_url, m.forward_path, m.raw, m.headers, m.project_id)
            except LegacyUnavailable:
                self.gateway.metrics.legacy_unavailable.inc()
                raise
            if config.mode == "bypass":
                journal = journal_entry(m, delegation) if answer.accepted else None
                result = "journaled" if journal is not None else None
                settlement = Settlement(
                    idem_key=m.idem_key,
                    transition=m.transition,
                    legacy_status=answer.status,
                    legacy_accepted=answer.accepted,
                    swoosh=result,
                    journal=journal,
                )
                if answer.accepted and journal is None:
                    settlement = settlement.model_copy(update={"divergences": [self._unjournaled(m, config)]})
                await self._settle(m.project_id, settlement)
                return relay(answer)
            if pending:
                await self.catchup.catch_up(m.project_id, config)
            settlement = await self.shadow.settlement(m, config, delegation, answer, started)
            await self._settle(m.project_id, settlement)
            for d in settlement.divergences:
                self.gateway.metrics.divergences.labels(transition=self.gateway.metrics.known(d.transition)).inc()
                jsonlog.event(
                    f"shadow divergence on {d.transition}: legacy {d.legacy}, SWOOSH {d.swoosh}",
                    event="shadow_divergence",
                    project_id=m.project_id,
                    transition=d.transition,
                    idem_key=m.idem_key,
                    reason=d.reason,
                )
            return relay(answer)

    async def _settle(self, project_id: str, settlement: Settlement) -> None:
        tq = self.gateway.task_queue
        await self._ledger(project_id, lambda c: ledger_settle(c, project_id, tq, settlement))

    def _unjournaled(self, m: Mutation, config: MigrationConfig) -> Divergence:
        return Divergence(
            idem_key=m.idem_key or "",
            transition=m.transition,
            kind="unapplied",
            mode=config.mode,
            legacy="accepted",
            swoosh="not journaled",
            reason="it carries a secret (a built-in SHHH rule matched): never written to Temporal history",
        )
