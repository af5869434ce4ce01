"""The delivery pump: a workflow coroutine that sends the outbox's records to the sink in batches.

It runs beside the run loop for the whole run and obeys the same two determinism rules: it emits
commands only at quiet points (no Update handler in flight) and fences off every workflow task it
acts in (see `fence.py`). It waits up to `dr_flush_ms` for a batch to fill, delivers it with a
regular activity, and backs off while the sink is unavailable; while the run drains for
continue-as-new it stays idle, since nothing may follow continue-as-new.

A store that refuses a batch (a fork, a gap, an acknowledgement that does not cover the batch)
never has those records counted as delivered: the pump keeps them, keeps the refusal for the
health query, and tries again after the same back-off (an operator may resolve the store).
Runs recorded before acknowledgements were checked (`checked=False`, a patch marker) counted any
answer as delivering the whole batch.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

from swoosh.workflows.engine import Engine
from swoosh.workflows.lifecycle.observe import Observer
from swoosh.workflows.lifecycle.outbox import Outbox
from swoosh.workflows.lifecycle.receipts import ReceiptBook
from swoosh.workflows.lifecycle.tuning import DELIVER_RETRY, SINK_BACKOFF
from swoosh.workflows.lifecycle.visibility import search_attributes_of
from swoosh.workflows.messages import (
    ACTIVITY_DELIVER,
    SINK_FORK_ERROR_TYPE,
    SINK_GAP_ERROR_TYPE,
    SINK_REFUSAL_TYPES,
    DeliveryRefusal,
    DeliveryRequest,
    DeliveryResult,
    LifecycleSettings,
)

REFUSAL_REASON_CHARS = 1000


class PumpState(enum.Enum):
    IDLE = "idle"
    FLUSHING = "flushing"  # waiting for a batch to fill; continue-as-new waits until it leaves this state
    DELIVERING = "delivering"
    BACKOFF = "backoff"


class Conductor(Protocol):
    """What the pump needs of the workflow it runs in."""

    draining: bool

    async def quiet(self) -> None: ...

    def resumed(self) -> None: ...

    def describe(self) -> None: ...


class DeliveryPump:
    def __init__(
        self,
        conductor: Conductor,
        engine: Engine,
        outbox: Outbox,
        settings: LifecycleSettings,
        observer: Observer,
        *,
        checked: bool = True,
        refusal: DeliveryRefusal | None = None,
        receipts: ReceiptBook | None = None,
    ) -> None:
        self.conductor = conductor
        self.observer = observer
        self.engine = engine
        self.outbox = outbox
        self.settings = settings
        self.checked = checked
        self.refusal = refusal
        self.receipts = receipts or ReceiptBook((), (), enabled=False)
        self.state = PumpState.IDLE
        self.published_index = -1

    async def run(self) -> None:
        c, outbox, s = self.conductor, self.outbox, self.settings
        while True:
            self.state = PumpState.IDLE
            await workflow.wait_condition(
                lambda: self._work_waits() and not c.draining and workflow.all_handlers_finished()
            )
            c.resumed()
            if not outbox.batch_full() and s.dr_flush_ms > 0:
                self.state = PumpState.FLUSHING
                try:
                    await workflow.wait_condition(
                        lambda: (outbox.batch_full() and workflow.all_handlers_finished()) or c.draining,
                        timeout=timedelta(milliseconds=s.dr_flush_ms),
                        timeout_summary="decision-record flush",
                    )
                except TimeoutError:
                    pass
                c.resumed()
                self.state = PumpState.IDLE
                await c.quiet()  # the flush timer may have fired alongside incoming Updates
                c.resumed()
            if c.draining:
                continue
            self._publish_search_attributes()
            batch = outbox.batch()
            # Receipts go with the batch that stores the last of their records, or alone once all are stored.
            receipts = self.receipts.deliverable(int(batch[-1]["index"]) if batch else outbox.delivered_index)
            self.state = PumpState.DELIVERING
            try:
                with self.observer.delivery_span(batch):  # in the trace of each transition it carries
                    result = await workflow.execute_activity(
                        ACTIVITY_DELIVER,
                        DeliveryRequest(project_id=self.engine.project_id, records=batch, receipts=receipts),
                        result_type=DeliveryResult,
                        start_to_close_timeout=timedelta(milliseconds=s.deliver_timeout_ms),
                        retry_policy=DELIVER_RETRY,
                        summary=_summary(batch, receipts),
                    )
            except ActivityError as err:
                c.resumed()
                self._note_failure(err)
                await self._back_off()
                continue
            c.resumed()
            if self.checked and batch and not covers(result, batch):
                self.refusal = DeliveryRefusal(
                    kind="refused",
                    index=int(batch[0]["index"]),
                    reason=f"the store acknowledged {result.delivered} delivered and {result.skipped} held up to "
                    f"index {result.last_index}, not the batch {batch[0]['index']}..{batch[-1]['index']}",
                    at_index=self.engine.index,
                )
                await self._back_off()
                continue
            self.refusal = None
            if batch:
                outbox.delivered(batch, result.last_index)
            self.observer.delivered(result.last_index)
            self.receipts.delivered(result.receipts)
            c.describe()

    def _work_waits(self) -> bool:
        """Records to deliver, or a receipt whose records are all stored (only in runs that make receipts)."""
        return bool(self.outbox.undelivered) or bool(self.receipts.deliverable(self.outbox.delivered_index))

    async def _back_off(self) -> None:
        """Wait before the next attempt (unless the run drains: no command may follow continue-as-new)."""
        c = self.conductor
        self.state = PumpState.IDLE
        await c.quiet()
        c.resumed()
        if c.draining:
            return
        self.state = PumpState.BACKOFF
        await workflow.sleep(SINK_BACKOFF, summary="decision-record sink unavailable; retry")
        c.resumed()

    def _note_failure(self, err: ActivityError) -> None:
        """Keep a store's refusal for the health query; an unavailable store is only retried."""
        cause = err.cause
        if not isinstance(cause, ApplicationError) or cause.type not in SINK_REFUSAL_TYPES:
            return
        details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
        index = details.get("index")
        kind = {SINK_FORK_ERROR_TYPE: "fork", SINK_GAP_ERROR_TYPE: "gap"}.get(cause.type or "", "refused")
        self.refusal = DeliveryRefusal(
            kind=kind,
            index=index if isinstance(index, int) else None,
            reason=cause.message[:REFUSAL_REASON_CHARS],
            at_index=self.engine.index,
        )

    def _publish_search_attributes(self) -> None:
        """Search attributes follow the head, published with deliveries (one upsert per batch, not per transition)."""
        index = self.engine.index
        if self.published_index == index:
            return
        attrs = search_attributes_of(self.engine.document)
        workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in attrs.search_attributes])
        self.published_index = index


def _summary(batch: list[dict[str, Any]], receipts: list[dict[str, Any]]) -> str:
    """The delivery activity's summary in the UI (the text of runs recorded before receipts, without them)."""
    text = f"deliver {len(batch)} decision record(s)" + (f" up to index {batch[-1]['index']}" if batch else "")
    if receipts:
        text += f" and {len(receipts)} receipt(s) for {receipts[0]['from_index']}..{receipts[-1]['to_index']}"
    return text


def covers(result: DeliveryResult, batch: list[dict[str, Any]]) -> bool:
    """The store's answer accounts for every record of the batch, up to its last index."""
    return result.delivered + result.skipped >= len(batch) and result.last_index >= int(batch[-1]["index"])
