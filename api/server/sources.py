"""What the gateway reads besides the request: Temporal, the decision-record store, BACKBEAT's windows.

`ClientSource` connects to Temporal on demand (failures become 503, or 429 when Temporal is
overloaded) and checks the namespace once; `DecisionPages` and `WindowSource` are what the worker
plugs in from its settings, and `store_problem` says whether the store can be read (for `/readyz`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from temporalio.client import Client
from temporalio.service import RPCError

from swoosh.api.server import jsonlog
from swoosh.api.server.problems import HttpProblem, OverloadedProblem, SetupProblem, UnavailableProblem, translate

ClientProvider = Callable[[], Awaitable[Client]]
SetupCheck = Callable[[Client], Awaitable[str | None]]  # None = the namespace is ready for SWOOSH


class DecisionPages(Protocol):
    """The configured decision-record store, read for the records a project's workflow no longer holds.

    The worker composes it from the `[records]` settings (JSONL files, PostgreSQL or BUBBLE); the API
    never reads another process's files on its own.
    """

    kind: str

    async def page(self, project_id: str, after_index: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` records of the project with index > `after_index`, in index order."""
        ...

    async def receipts(self, project_id: str) -> list[dict[str, Any]]:
        """Every snapshot receipt the store holds for the project, by `from_index`."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CheckedStore(Protocol):
    """A decision store that can say whether it is usable now (for `/readyz`)."""

    async def check(self) -> str | None: ...


READY_PROBE_PROJECT = "swoosh-readyz"  # a project id no one uses: a one-record read of it proves the store answers


async def store_problem(store: DecisionPages) -> str | None:
    """Why the decision store cannot be read now (for `/readyz`), or None.

    Its own `check()` when it has one, else a one-record read (which must answer, even if empty).
    """
    try:
        if isinstance(store, CheckedStore):
            return await store.check()
        await store.page(READY_PROBE_PROJECT, 0, 1)
    except Exception as err:  # any failure of the store is the store's, reported as such
        return f"the decision-record store ({store.kind}) cannot be read: {type(err).__name__}"
    return None


def _unreachable(err: BaseException) -> HttpProblem:
    """A failure to connect or to check the namespace: 429 for Temporal's RESOURCE_EXHAUSTED, else 503."""
    mapped = translate(err) if isinstance(err, RPCError) else None
    if isinstance(mapped, OverloadedProblem):
        return mapped
    return UnavailableProblem(f"Temporal cannot be reached: {type(err).__name__}")


class WindowSource(Protocol):
    """BACKBEAT's windows as the workers' facts will show them (the worker composes it from its settings)."""

    async def windows(self) -> dict[str, Any]:
        """`{"now_ms", "source", "window_id", "phase", "classes": {class: {window_id, open, opens_at_ms,
        closes_at_ms}}, "error"}`."""
        ...

    async def aclose(self) -> None: ...


class ClientSource:
    """A Temporal client, given or connected on demand; connection failures become 503.

    With a `setup_check`, the namespace is checked once, before the first use of the client: until
    `swoosh setup` has prepared it, every request is a 503 saying so (instead of failing later, e.g.
    a project start refused for undefined search attributes).
    """

    def __init__(
        self, client: Client | ClientProvider, connect_timeout_s: float = 5.0, setup_check: SetupCheck | None = None
    ) -> None:
        self._client = client if isinstance(client, Client) else None
        self._provider = None if isinstance(client, Client) else client
        self._lock = asyncio.Lock()
        self._timeout = connect_timeout_s
        self._setup_check = setup_check
        self._verified = setup_check is None
        self._last_failure = ""

    async def get(self) -> Client:
        client = self._client if self._client is not None else await self._connect()
        if not self._verified:
            await self._verify(client)
        return client

    async def _connect(self) -> Client:
        assert self._provider is not None
        async with self._lock:
            if self._client is None:
                try:
                    async with asyncio.timeout(self._timeout):
                        self._client = await self._provider()
                except (RuntimeError, OSError, TimeoutError, RPCError) as err:
                    # TemporalUnreachable (a RuntimeError) says where and what to check: logged (once per
                    # distinct failure), while the caller's answer says less.
                    failure = str(err)[:1000] or type(err).__name__
                    if failure != self._last_failure:
                        self._last_failure = failure
                        jsonlog.event(f"cannot connect to Temporal: {failure}", level=30, event="temporal_unreachable")
                    raise _unreachable(err) from None
            return self._client

    async def _verify(self, client: Client) -> None:
        assert self._setup_check is not None
        async with self._lock:
            if self._verified:
                return
            try:
                async with asyncio.timeout(self._timeout):
                    problem = await self._setup_check(client)
            except (RPCError, RuntimeError, OSError, TimeoutError) as err:  # a lazy client connects here
                raise _unreachable(err) from None
            if problem is not None:
                raise SetupProblem(problem)
            self._verified = True
