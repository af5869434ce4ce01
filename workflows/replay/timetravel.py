"""A project's state as it was after any index: the nearest snapshot at or before it, folded forward.

Every run of a project's workflow starts from a snapshot (its continue-as-new input) and its start
event names the run it continued from. `PastStates.state_at` finds the last run whose snapshot is at
or before the wanted index (a binary search over the runs Temporal's visibility lists, or a walk back
along the chain where there is no visibility), then re-applies that run's
decision records up to the index through the pure engine, exactly as `swoosh replay`'s fold does:
callers' proposals re-admitted from their signed payloads, guard outcomes from the records, every
`state_post_hash` checked on the way. The result's hash is therefore record N's `state_post_hash`.

What a finished run's history says never changes, so links of the chain, the facts of finished runs
and computed states are cached (bounded); only the current run is read again on each request.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from swoosh.workflows.canonical import content_hash
from swoosh.workflows.engine import Engine
from swoosh.workflows.errors import SwooshError
from swoosh.workflows.ids import workflow_id
from swoosh.workflows.messages import LifecycleInput
from swoosh.workflows.reducer import clone
from swoosh.workflows.replay.fold import apply_record
from swoosh.workflows.replay.history import CONVERTER, RunFacts, decode_histories, run_facts
from swoosh.workflows.statechart import default_statechart

K = TypeVar("K")
V = TypeVar("V")
# Records the workflow still holds but has not delivered yet (not in its history): after_index, limit.
MoreRecords = Callable[[int, int], Awaitable[list[dict[str, Any]]]]


class PastUnavailable(SwooshError):
    """The wanted index cannot be rebuilt: its history is no longer kept, or it is not there at all."""


class PastInconsistent(SwooshError):
    """Folding the history did not reproduce a recorded hash: the history or the code is broken."""


@dataclass(frozen=True, slots=True)
class RunLink:
    """One run of a project's workflow: the index its snapshot is at, and the run it continued from."""

    run_id: str
    start_index: int
    previous: str | None


@dataclass(frozen=True, slots=True)
class PastState:
    """The document after `index`, rebuilt from the snapshot of run `run_id` at `snapshot_index`."""

    document: dict[str, Any]
    hash: str
    index: int
    run_id: str
    snapshot_index: int
    folded: int  # transitions re-applied after the snapshot


class _Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class PastStates:
    """Rebuild states after any index of any project, with caches for what history cannot change.

    `max_runs` finished runs' facts (a run holds up to `snapshot_every` transitions, about 5 KB of
    history each), `max_links` chain links and `max_states` computed documents are kept.
    """

    def __init__(self, *, max_runs: int = 8, max_links: int = 65_536, max_states: int = 256) -> None:
        self._links: _Lru[tuple[str, str], RunLink] = _Lru(max_links)
        self._runs: _Lru[tuple[str, str], RunFacts] = _Lru(max_runs)
        self._states: _Lru[tuple[str, int], PastState] = _Lru(max_states)
        self._lock = asyncio.Lock()  # one history walk at a time: each can fetch megabytes
        self.fetches = 0  # history requests made (for the figures in docs/operations.md)

    async def state_at(
        self, client: Client, project_id: str, index: int, *, more_records: MoreRecords | None = None
    ) -> PastState:
        """The state after `index` (0 = genesis). Raises PastUnavailable / PastInconsistent, RPCError."""
        if index < 0:
            raise PastUnavailable(f"index {index} is negative")
        cached = self._states.get((project_id, index))
        if cached is not None:
            return cached
        async with self._lock:
            past = await self._rebuild(client, project_id, index, more_records)
        self._states.put((project_id, index), past)
        return past

    async def _rebuild(
        self, client: Client, project_id: str, index: int, more_records: MoreRecords | None
    ) -> PastState:
        wid = workflow_id(project_id)
        current = (await client.get_workflow_handle(wid).describe()).run_id
        link = await self._search(client, wid, current, index)
        if link is None:  # no visibility (the time-skipping server): walk the chain back from the current run
            link = await self._walk(client, wid, current, index)
        facts = await self._facts(client, wid, link.run_id, finished=link.run_id != current)
        return await _fold_to(facts, link, index, more_records)

    async def _search(self, client: Client, wid: str, current: str, index: int) -> RunLink | None:
        """Binary search over the runs visibility lists (in start order): a few start events, not every one.

        A start event carries its whole snapshot (up to about 1 MB), so walking a long chain back costs
        one such read per run; visibility names every run at once. Runs a reset replaced are
        TERMINATED and skipped (the current run is always kept); None when the server has no visibility.
        """
        try:
            found = [
                (wf.start_time, wf.run_id)
                async for wf in client.list_workflows(f"WorkflowId = '{wid}'")
                if wf.status != WorkflowExecutionStatus.TERMINATED or wf.run_id == current
            ]
        except RPCError:
            return None
        self.fetches += 1
        runs = [r for _, r in sorted(found) if r != current] + [current]  # visibility may lag the newest run
        lo, hi = 0, len(runs) - 1
        best: RunLink | None = None
        while lo <= hi:
            mid = (lo + hi) // 2
            link = await self._link(client, wid, runs[mid])
            if link.start_index <= index:
                best, lo = link, mid + 1
            else:
                hi = mid - 1
        if best is None:
            first = await self._link(client, wid, runs[0])
            if first.previous is not None:
                raise PastUnavailable(
                    f"the history before index {first.start_index} is no longer kept (the namespace's retention)"
                )
            raise PastUnavailable(f"no snapshot at or before index {index}")
        return best

    async def _walk(self, client: Client, wid: str, current: str, index: int) -> RunLink:
        link = await self._link(client, wid, current)
        while link.start_index > index:
            if link.previous is None:
                raise PastUnavailable(
                    f"no snapshot at or before index {index} (the first run starts at {link.start_index})"
                )
            try:
                link = await self._link(client, wid, link.previous)
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                raise PastUnavailable(
                    f"the history before index {link.start_index} is no longer kept (the namespace's retention)"
                ) from None
        return link

    async def _link(self, client: Client, wid: str, run_id: str) -> RunLink:
        link = self._links.get((wid, run_id))
        if link is not None:
            return link
        self.fetches += 1
        async for event in client.get_workflow_handle(wid, run_id=run_id).fetch_history_events(page_size=1):
            if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
                break
            started = event.workflow_execution_started_event_attributes
            # Decoded like `run_facts` decodes every payload it reads (decrypted first when encrypted).
            await decode_histories([WorkflowHistory(wid, [event])], client.data_converter.payload_codec)
            inp = CONVERTER.from_payloads(list(started.input.payloads), [LifecycleInput])[0]
            link = RunLink(
                run_id, int(inp.snapshot.document["meta"]["index"]), started.continued_execution_run_id or None
            )
            self._links.put((wid, run_id), link)
            return link
        raise PastUnavailable(f"run {run_id} of {wid} has no start event")

    async def _facts(self, client: Client, wid: str, run_id: str, *, finished: bool) -> RunFacts:
        facts = self._runs.get((wid, run_id)) if finished else None
        if facts is None:
            self.fetches += 1
            history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
            await decode_histories([history], client.data_converter.payload_codec)
            facts = run_facts(history)
            if finished:
                self._runs.put((wid, run_id), facts)
        return facts


async def _fold_to(facts: RunFacts, link: RunLink, index: int, more_records: MoreRecords | None) -> PastState:
    start = facts.start
    if start is None:
        raise PastUnavailable(f"run {link.run_id} has no start event")
    snap = start.snapshot.model_copy(deep=True)
    snap.document = clone(snap.document)
    engine = Engine(default_statechart(), snap)
    proposals: dict[str, list[Any]] = {k: list(v) for k, v in facts.proposals.items()}
    for req in start.inbox:  # signals queued in an earlier run and carried in this run's snapshot
        key = (req.body if isinstance(req.body, dict) else {}).get("idem_key") or req.header_fields.get("idem_key")
        if isinstance(key, str):
            proposals.setdefault(key, []).append(req)
    records = dict(facts.records)
    folded = 0
    for i in range(engine.index + 1, index + 1):
        rec = records.get(i)
        if rec is None and more_records is not None:
            for r in await more_records(i - 1, max(1, index - i + 1)):
                records.setdefault(int(r["index"]), r)
            rec = records.get(i)
        if rec is None:
            raise PastUnavailable(f"index {i}: no decision record for it in the history or the workflow")
        problem = apply_record(engine, rec, proposals)
        if problem is not None:
            raise PastInconsistent(f"index {i} ({rec['transition']}): {problem}")
        folded += 1
    document = engine.document
    head = content_hash(document)
    recorded = records.get(index)
    if folded == 0 and recorded is not None and recorded["state_post_hash"] != head:
        raise PastInconsistent(f"index {index}: snapshot hash {head} ≠ recorded {recorded['state_post_hash']}")
    return PastState(document, head, index, link.run_id, link.start_index, folded)
