"""When a run continues as new, and what it carries into the next run (the snapshot).

Workflow code (deterministic). Continue-as-new is the snapshot: the next run starts from the engine's
document, the undelivered records, the queued signals, the rejection log and the receipts.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from swoosh.workflows.engine import Engine
    from swoosh.workflows.lifecycle.inbox import Inbox
    from swoosh.workflows.lifecycle.outbox import Outbox
    from swoosh.workflows.lifecycle.receipts import ReceiptBook
    from swoosh.workflows.lifecycle.tuning import PATCH_ADOPT_RULES
    from swoosh.workflows.messages import DeliveryRefusal, LifecycleInput, LifecycleSettings, RejectionLogEntry


class SnapshotPolicy:
    """When the run continues as new: every `snapshot_every` accepted transitions, at a snapshot point
    (REVERB) after at least `reverb_min`, when Temporal suggests it, or when an operator asks."""

    def __init__(self, settings: LifecycleSettings, index: int, hlc: str | None, reverb_min: int) -> None:
        self.every = settings.snapshot_every
        self.index = index  # the engine index the run started from
        self.hlc = hlc
        self.reverb_min = reverb_min
        self.wanted = False
        self.dry_runs = 0  # dry runs this run accepted as Updates: they count towards Temporal's Update limit

    def due(self, engine: Engine) -> bool:
        if engine.top == "TERMINATED" and not self.wanted:
            return False
        accepted = engine.index - self.index
        # Dry runs change nothing but still fill the run's history and its Update budget.
        return (
            self.wanted
            or accepted >= self.every
            or ((accepted > 0 or self.dry_runs > 0) and workflow.info().is_continue_as_new_suggested())
        )

    def accepted(self, engine: Engine, snapshot_point: bool) -> None:
        if snapshot_point and engine.index - self.index >= self.reverb_min:
            self.wanted = True


def next_input(
    engine: Engine,
    settings: LifecycleSettings,
    outbox: Outbox,
    inbox: Inbox,
    rejections: Iterable[RejectionLogEntry],
    receipts: ReceiptBook,
    *,
    runs: int,
    refusal: DeliveryRefusal | None,
    entered: Any,
) -> LifecycleInput:
    """The next run's input: the snapshot, and everything still owed (records, signals, receipts)."""
    receipts.close_interval(engine.project_id)  # the receipt of this run's records
    snapshot = engine.snapshot()
    if workflow.patched(PATCH_ADOPT_RULES):
        snapshot.config = snapshot.config.adopt_rules()  # a project started before them adopts them now
    return LifecycleInput(
        snapshot=snapshot,
        settings=settings,
        undelivered=outbox.undelivered,
        retained=list(outbox.retained),
        inbox=inbox.items,
        rejections=list(rejections),
        snapshot_index=engine.index,
        snapshot_hlc=engine.document["hlc_last"],
        runs=runs + 1,
        refusal=refusal,
        receipts=receipts.pending,
        receipts_stored=receipts.stored,
        entered=entered,
    )
