"""The delivery pump: a workflow coroutine that sends the outbox's records to the sink in batches.

It runs beside the run loop for the whole run and obeys the same two determinism rules: it emits
commands only at quiet points (no Update handler in flight) and fences off every workflow task it
acts in (see `fence.py`). It waits up to `dr_flush_ms` for a batch to fill, delivers it with a
regular activity, and backs off while the sink is unavailable; while the run drains for
continue-as-new it stays idle, since nothing may follow continue-as-new.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

from swoosh.workflows.engine import Engine
from swoosh.workflows.lifecycle.outbox import Outbox
from swoosh.workflows.lifecycle.tuning import DELIVER_RETRY, SINK_BACKOFF
from swoosh.workflows.lifecycle.visibility import search_attributes_of
from swoosh.workflows.messages import ACTIVITY_DELIVER, DeliveryRequest, DeliveryResult, LifecycleSettings


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
    def __init__(self, conductor: Conductor, engine: Engine, outbox: Outbox, settings: LifecycleSettings) -> None:
        self.conductor = conductor
        self.engine = engine
        self.outbox = outbox
        self.settings = settings
        self.state = PumpState.IDLE
        self.published_index = -1

    async def run(self) -> None:
        c, outbox, s = self.conductor, self.outbox, self.settings
        while True:
            self.state = PumpState.IDLE
            await workflow.wait_condition(
                lambda: bool(outbox.undelivered) and not c.draining and workflow.all_handlers_finished()
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
            self.state = PumpState.DELIVERING
            try:
                result = await workflow.execute_activity(
                    ACTIVITY_DELIVER,
                    DeliveryRequest(project_id=self.engine.project_id, records=batch),
                    result_type=DeliveryResult,
                    start_to_close_timeout=timedelta(milliseconds=s.deliver_timeout_ms),
                    retry_policy=DELIVER_RETRY,
                    summary=f"deliver {len(batch)} decision record(s) up to index {batch[-1]['index']}",
                )
            except ActivityError:
                c.resumed()
                self.state = PumpState.IDLE
                await c.quiet()
                c.resumed()
                if c.draining:
                    continue  # no new command may follow continue-as-new
                self.state = PumpState.BACKOFF
                await workflow.sleep(SINK_BACKOFF, summary="decision-record sink unavailable; retry")
                c.resumed()
                continue
            c.resumed()
            outbox.delivered(batch, result.last_index)
            c.describe()

    def _publish_search_attributes(self) -> None:
        """Search attributes follow the head, published with deliveries (one upsert per batch, not per transition)."""
        index = self.engine.index
        if self.published_index == index:
            return
        attrs = search_attributes_of(self.engine.document)
        workflow.upsert_search_attributes([pair.key.value_set(pair.value) for pair in attrs.search_attributes])
        self.published_index = index
