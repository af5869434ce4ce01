"""The task fence on its own: which activation keys turn an Update away (the workflow test drives it live)."""

from __future__ import annotations

from swoosh.workflows.lifecycle.fence import TaskFence


def test_fence_open_before_background_code_ran() -> None:
    assert not TaskFence().fenced((3, 1000))


def test_fence_closes_the_task_background_code_acted_in() -> None:
    fence = TaskFence()
    fence.resume((10, 1000))
    assert fence.fenced((10, 1000))
    assert fence.fenced((10, 1005))  # same history length: same task
    assert fence.fenced((12, 1000))  # same task time: same task (two tasks in one ms cost a resend)
    assert not fence.fenced((12, 1005))  # a later task


def test_fence_catch_up_activation_fences_until_a_later_task() -> None:
    fence = TaskFence()
    fence.observe((10, 1000))
    fence.observe((14, 1000))  # history grew, task time did not: a catch-up activation
    assert fence.fenced((20, 2000))
    fence.observe((20, 2000))  # a real task followed
    assert not fence.fenced((20, 2000))


def test_fence_seen_keeps_the_longest_history() -> None:
    fence = TaskFence()
    fence.observe((14, 1000))
    fence.observe((10, 1001))
    assert fence.seen == (14, 1001)
