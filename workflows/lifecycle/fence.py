"""The task fence: an Update may not be taken in a workflow task where background code already acted.

Pure (no Temporal import): the workflow passes the key of the activation it runs in,
`(history length, task time in ms)`.

Why. The SDK core can hand the workflow a timer firing or an activity completing in one activation
and an Update that belongs to the same workflow task in a later one, while a replay of the same
history delivers both in one activation, where the Update runs first. If background code (the run
loop, the delivery pump) emitted commands in between, live and replay disagree on the order of
commands and the history no longer replays ("Update machine does not handle this event:
UpsertWorkflowSearchAttributes"; seen in full chaos runs). The split shows up in two forms:

* within one workflow task (same history length or same task time), and
* after a *catch-up*: a query reaching a worker without the workflow in cache makes the core apply
  the history up to the latest event, including a timer that fired while the task was still
  waiting to start. That activation keeps the previous task's time although history has grown, and
  its commands are sent with the next real task, ahead of that task's Updates.

In both cases an Update validated afterwards, before the next real task's background code ran, is
turned away with a retry-later error: nothing is written, the caller resends, and it is taken in a
later task. Updates validated before background code runs in an activation (the normal case: the SDK
applies them first) are unaffected, and replay never runs validators.
"""

from __future__ import annotations

TaskKey = tuple[int, int]  # (history length, task time in ms) of an activation


class TaskFence:
    def __init__(self) -> None:
        self.fence: TaskKey | None = None  # the workflow task in which background code last ran
        self.seen: TaskKey = (0, 0)  # the latest activation our code ran in
        self.catch_up_at: int | None = None  # task time of a catch-up activation not yet followed by a new task

    def observe(self, key: TaskKey) -> None:
        """Note the activation our code runs in; spot catch-up activations."""
        length, now_ms = key
        seen_length, seen_now = self.seen
        if now_ms == seen_now and length > seen_length:
            self.catch_up_at = now_ms  # history grew, yet no new workflow task started
        elif self.catch_up_at is not None and now_ms > self.catch_up_at:
            self.catch_up_at = None  # a real task followed; its Updates were validated before this point
        self.seen = (max(length, seen_length), now_ms)

    def resume(self, key: TaskKey) -> None:
        """Background code is about to act in this activation: fence its workflow task off."""
        self.observe(key)
        self.fence = key

    def fenced(self, key: TaskKey) -> bool:
        """An Update validated in this activation must be turned away (retry later)."""
        if self.catch_up_at is not None:
            return True
        if self.fence is None:
            return False
        length, now_ms = key
        # Either component identifies the task: history length changes with every task, the task's
        # start time may not (two tasks in one millisecond); a false positive only costs a resend.
        return self.fence[0] == length or self.fence[1] == now_ms
