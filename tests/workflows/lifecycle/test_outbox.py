"""The decision-record outbox: batches, byte limits, retention, back-pressure, the delivered index."""

from __future__ import annotations

from typing import Any

from swoosh.workflows.canonical import canonical_json
from swoosh.workflows.lifecycle.outbox import Outbox
from swoosh.workflows.messages import LifecycleSettings


def record(index: int, pad: int = 0) -> dict[str, Any]:
    return {"index": index, "dr_hash": f"h{index}", "evidence": ["x" * pad] if pad else []}


def outbox(**settings: int) -> Outbox:
    return Outbox(LifecycleSettings(**settings), [], [], head_index=0)


def test_outbox_delivered_index_starts_below_the_oldest_undelivered_record() -> None:
    assert Outbox(LifecycleSettings(), [record(5), record(6)], [], head_index=6).delivered_index == 4
    assert Outbox(LifecycleSettings(), [], [], head_index=9).delivered_index == 9


def test_outbox_batch_is_cut_by_count() -> None:
    box = outbox(dr_batch=3)
    for i in range(1, 6):
        box.add(record(i))
    assert [r["index"] for r in box.batch()] == [1, 2, 3]
    assert box.batch_full()


def test_outbox_batch_is_cut_by_bytes_but_holds_at_least_one() -> None:
    box = outbox(dr_batch=64, dr_batch_bytes=4096)
    for i in range(1, 4):
        box.add(record(i, pad=3000))
    assert [r["index"] for r in box.batch()] == [1]  # a second would pass 4096 bytes
    assert box.batch_full()


def test_outbox_count_only_batches_when_replaying_old_runs() -> None:
    box = Outbox(LifecycleSettings(dr_batch=64, dr_batch_bytes=4096), [], [], head_index=0, byte_limits=False)
    for i in range(1, 4):
        box.add(record(i, pad=3000))
    assert len(box.batch()) == 3 and not box.batch_full()
    assert len(box.retained) == 3  # retention by count only, too


def test_outbox_retains_newest_records_within_bytes() -> None:
    box = outbox(dr_retain_bytes=8000)
    for i in range(1, 6):
        box.add(record(i, pad=3000))
    assert [r["index"] for r in box.retained] == [4, 5]
    assert box.bytes_of(box.retained) <= 8000
    assert box.first_retained_index() == 4


def test_outbox_keeps_one_retained_record_however_large() -> None:
    box = outbox(dr_retain_bytes=0)
    box.add(record(1, pad=5000))
    assert [r["index"] for r in box.retained] == [1]


def test_outbox_backlog_turns_new_transitions_away_by_count_and_by_bytes() -> None:
    box = outbox(dr_backlog_max=2)
    box.add(record(1))
    assert box.backlog_reason() is None
    box.add(record(2))
    assert "2 records" in (box.backlog_reason() or "")
    big = outbox(dr_backlog_bytes=4096)
    big.add(record(1, pad=5000))
    assert "KiB not yet delivered" in (big.backlog_reason() or "")


def test_outbox_delivered_removes_the_batch_and_advances_the_index() -> None:
    box = outbox()
    for i in range(1, 4):
        box.add(record(i))
    box.delivered(box.batch()[:2], last_index=2)
    assert [r["index"] for r in box.undelivered] == [3]
    assert box.delivered_index == 2
    box.delivered([], last_index=1)  # a stale answer never moves it back
    assert box.delivered_index == 2


def test_outbox_size_is_canonical_json_bytes() -> None:
    rec = record(7, pad=10)
    assert outbox().size(rec) == len(canonical_json(rec))


def test_outbox_page_filters_and_caps() -> None:
    box = outbox()
    for i in range(1, 6):
        box.add(record(i))
    assert [r["index"] for r in box.page(2, 2)] == [3, 4]
    assert box.page(0, -1) == []


def test_outbox_behind_after_four_batches() -> None:
    box = outbox(dr_batch=2)
    for i in range(1, 9):
        box.add(record(i))
    assert not box.behind()
    box.add(record(9))
    assert box.behind()
