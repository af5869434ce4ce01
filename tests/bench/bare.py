"""The bare ceiling for the benchmark: an Update whose handler runs one local activity, nothing else.

In its own module: the workflow sandbox cannot validate a workflow defined in a module run as `__main__`.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="bench.noop")
async def noop(n: int) -> int:
    return n + 1


@workflow.defn(name="BareCeiling")
class BareCeiling:
    """The ceiling: an Update whose handler runs one local activity, nothing else."""

    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.update
    async def bump(self, n: int) -> int:
        self.count = await workflow.execute_local_activity(
            noop, n, start_to_close_timeout=timedelta(seconds=10), retry_policy=RetryPolicy(maximum_attempts=3)
        )
        return self.count

    @bump.validator
    def validate_bump(self, n: int) -> None:
        if n < 0:
            raise ValueError("negative")
