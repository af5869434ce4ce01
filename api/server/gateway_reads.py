"""The gateway's reads: state (now, or rebuilt as it was), health, decision pages, windows, receipts.

A decisions page takes the records the workflow no longer holds from the decision-record store,
and is whole or an error (503 `records_unavailable`), never a page with a hole.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client

from swoosh.api.models import (
    DecisionsAnswer,
    NextWindowed,
    Receipt,
    ReceiptsAnswer,
    RejectionBody,
    WindowClassView,
    WindowsAnswer,
)
from swoosh.api.server import jsonlog
from swoosh.api.server.gateway_core import GatewayCore
from swoosh.api.server.problems import NotFoundProblem, QueryFailed, RecordsUnavailableProblem, UnavailableProblem
from swoosh.workflows.answers import IdemEntry
from swoosh.workflows.document import projection_sections
from swoosh.workflows.lifecycle.client import (
    read_decisions,
    read_head,
    read_health,
    read_receipts,
    read_seen,
    read_state,
)
from swoosh.workflows.lifecycle.shadow_client import ledger_report
from swoosh.workflows.lifecycle.views import document_view
from swoosh.workflows.messages import HeadView, HealthView, StateView
from swoosh.workflows.replay.timetravel import PastUnavailable
from swoosh.workflows.shadow import ShadowReport
from swoosh.workflows.statechart import default_statechart

CHART = default_statechart()


class GatewayReads(GatewayCore):
    """The read operations, each one query (or a rebuild from history) through `GatewayCore._call`."""

    async def read_head_view(self, project_id: str) -> HeadView:
        return await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))

    async def seen(self, project_id: str, idem_key: str) -> IdemEntry | None:
        """What the project's idempotency window holds for `idem_key` (None too when the project does not exist)."""
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_seen(c, project_id, idem_key))
        except NotFoundProblem:
            return None

    async def state(self, project_id: str, projection: str | None, at: int | None = None) -> StateView | RejectionBody:
        """The state now, or after index `at` (rebuilt from history; `at` past the head is a schema error)."""
        try:
            names = projection_sections(projection)
        except ValueError as err:
            return await self.schema_rejection(project_id, str(err))
        if at is not None:
            head = await self._call(project_id, self.query_timeout_s, lambda c: read_head(c, project_id))
            if at > head.index:
                reason = f"at={at} is after the project's last index {head.index}"
                return RejectionBody.schema_error(reason, head.hash)
            if at < head.index:
                return await self._past(project_id, at, names, head.hash)
        try:
            return await self._call(project_id, self.query_timeout_s, lambda c: read_state(c, project_id, names))
        except QueryFailed as err:
            return await self.schema_rejection(project_id, str(err)[:500])

    async def _past(self, project_id: str, at: int, names: list[str] | None, head: str) -> StateView | RejectionBody:
        async def rebuild(c: Client) -> StateView:
            async def more(after_index: int, limit: int) -> list[dict[str, Any]]:
                return (await read_decisions(c, project_id, after_index, min(limit, 1000))).records

            past = await self.past.state_at(c, project_id, at, more_records=more)
            return document_view(past.document, past.hash, names)

        try:
            return await self._call(project_id, self.past_timeout_s, rebuild)
        except PastUnavailable as err:
            return RejectionBody.schema_error(str(err), head)

    async def health(self, project_id: str) -> HealthView:
        return await self._call(project_id, self.query_timeout_s, lambda c: read_health(c, project_id))

    async def decisions(self, project_id: str, after_index: int, limit: int) -> DecisionsAnswer:
        """A page of records `after_index + 1 ..`: the workflow's retained ones, older ones from the store.

        The page has no holes: a record the workflow no longer holds and the store cannot give is an
        error (503, the store may be behind or unreachable), never silently skipped.
        """
        page = await self._call(
            project_id, self.query_timeout_s, lambda c: read_decisions(c, project_id, after_index, limit)
        )
        records = list(page.records)
        first = page.first_retained_index
        wanted_last = min(page.head_index, after_index + limit)
        if wanted_last > after_index and (first is None or first > after_index + 1):
            older_last = wanted_last if first is None else min(wanted_last, first - 1)
            older = await self._older_records(project_id, after_index, older_last)
            records = (older + [r for r in records if int(r["index"]) > older_last])[:limit]
        _check_page(project_id, after_index, records)
        next_after = int(records[-1]["index"]) if records else after_index
        return DecisionsAnswer(
            project_id=project_id,
            records=records,
            head_index=page.head_index,
            first_retained_index=first,
            next_after_index=next_after,
        )

    async def _older_records(self, project_id: str, after_index: int, last: int) -> list[dict[str, Any]]:
        """Records after_index+1 .. last from the decision-record store, all of them or a RecordsUnavailable."""
        store = self.decision_store
        span = f"{after_index + 1}..{last}"
        if store is None:
            raise RecordsUnavailableProblem(
                f"records {span} of project {project_id} are no longer held by its workflow and this API has "
                "no decision-record store configured",
                retry_after=None,
            )
        try:
            async with asyncio.timeout(self.query_timeout_s):
                got = await store.page(project_id, after_index, last - after_index)
        except Exception as err:  # any failure of the store is the store's, reported as such
            jsonlog.event(
                f"decision-record store ({store.kind}) read failed: {type(err).__name__}: {str(err)[:300]}",
                event="records_read_failed",
                project_id=project_id,
            )
            raise RecordsUnavailableProblem(
                f"the decision-record store ({store.kind}) cannot be read for records {span}: {type(err).__name__}"
            ) from None
        older = [r for r in got if int(r["index"]) <= last]
        indexes = [int(r["index"]) for r in older]
        if indexes != list(range(after_index + 1, last + 1)):
            have = next((i for n, i in enumerate(indexes) if i != after_index + 1 + n), None)
            missing = after_index + 1 + len(indexes) if have is None else after_index + 1 + indexes.index(have)
            raise RecordsUnavailableProblem(
                f"the decision-record store ({store.kind}) lacks record {missing} of project {project_id} "
                f"(records {span} are no longer held by the workflow): not delivered yet, or written to "
                "another store; retry later"
            )
        return older

    async def window(self, project_id: str) -> WindowsAnswer:
        """BACKBEAT now, each window class, and the project's next window-gated transition."""
        view = await self._call(project_id, self.query_timeout_s, lambda c: read_state(c, project_id, ["meta"]))
        if self.windows is None:
            raise UnavailableProblem("this API has no BACKBEAT settings to read windows from", retry_after=None)
        table = await self.windows.windows()
        now = int(table["now_ms"])
        classes = {
            name: WindowClassView(
                **c,
                opens_in_ms=None if c["opens_at_ms"] is None else max(0, int(c["opens_at_ms"]) - now),
                closes_in_ms=None if c["closes_at_ms"] is None else max(0, int(c["closes_at_ms"]) - now),
            )
            for name, c in table["classes"].items()
        }
        gates = {t.name: str(t.spec.window) for t in CHART.transitions.values() if t.spec.window is not None}
        nxt = None
        if view.phase["top"] == "EXECUTION":
            for t in CHART.transitions.values():
                s = t.spec
                if s.window is not None and s.machine == "execution" and view.phase["execution"] in t.sources:
                    c = classes.get(s.window)
                    nxt = NextWindowed(
                        transition=s.name,
                        window_class=s.window,
                        window_id=c.window_id if c else None,
                        open=bool(c and c.open),
                        opens_in_ms=c.opens_in_ms if c else None,
                        closes_in_ms=c.closes_in_ms if c else None,
                    )
                    break
        return WindowsAnswer(
            project_id=project_id,
            now_ms=now,
            source=str(table["source"]),
            window_id=table.get("window_id"),
            phase=table.get("phase"),
            classes=classes,
            gates=gates,
            next=nxt,
            error=table.get("error"),
        )

    async def receipts(self, project_id: str) -> ReceiptsAnswer:
        """Every snapshot receipt: those in the store, then those the workflow has not stored yet (unsigned)."""
        held = await self._call(project_id, self.query_timeout_s, lambda c: read_receipts(c, project_id))
        stored: list[dict[str, Any]] = []
        store = self.decision_store
        if store is not None and hasattr(store, "receipts"):  # a store written before receipts keeps none
            try:
                async with asyncio.timeout(self.query_timeout_s):
                    stored = await store.receipts(project_id)
            except Exception as err:  # the store's failure, reported as such
                jsonlog.event(
                    f"decision-record store ({store.kind}) receipts read failed: {type(err).__name__}",
                    event="records_read_failed",
                    project_id=project_id,
                )
                raise RecordsUnavailableProblem(
                    f"the decision-record store ({store.kind}) cannot be read for receipts: {type(err).__name__}"
                ) from None
        by_start = {int(r["from_index"]): r for r in held}
        by_start.update({int(r["from_index"]): r for r in stored})  # the store's copy is the signed one
        return ReceiptsAnswer(
            project_id=project_id, receipts=[Receipt.model_validate(by_start[k]) for k in sorted(by_start)]
        )

    async def shadow_report(self, project_id: str, limit: int) -> ShadowReport:
        """The project's migration ledger report (empty when nothing was ever compared for it)."""
        report = await self._call(project_id, self.query_timeout_s, lambda c: ledger_report(c, project_id, limit))
        if report is None:
            return ShadowReport(
                project_id=project_id,
                compared={},
                diverged={},
                by_kind={},
                claims=0,
                pending=0,
                dropped=0,
                divergences=[],
            )
        return report


def _check_page(project_id: str, after_index: int, records: list[dict[str, Any]]) -> None:
    """Consecutive indexes from after_index + 1, each record linked to the one before it."""
    expected = after_index + 1
    for n, rec in enumerate(records):
        if int(rec["index"]) != expected + n:
            raise RecordsUnavailableProblem(f"project {project_id}: record {expected + n} is missing from the page")
        if n and rec.get("prev_dr_hash") != records[n - 1].get("dr_hash"):
            raise RecordsUnavailableProblem(
                f"project {project_id}: record {rec['index']} does not link to record {int(rec['index']) - 1} "
                "(the decision-record store holds a forked chain; see the project's health)",
                retry_after=None,
            )
