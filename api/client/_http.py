"""The SWOOSH Python client (sync `SwooshClient`, async `AsyncSwooshClient`) on httpx.

It signs proposals with an Ed25519 key file, keeps a caller-side HLC (observing `hlc_last` of every
read and the `hlc` of every answer), makes fresh idem keys `goal:beat:opclass:uuid`, returns typed
answers and raises one typed error per contract code (`swoosh.api.client.errors`). 429 and 503 are retried with
the same signed body (same idem_key, so a resend is answered as a duplicate, never applied twice),
honouring Retry-After within a bounded budget. This module holds the two clients' I/O and typed calls;
what they share without I/O (request building, answer parsing, retry waits) is `_core.py`.

    with SwooshClient("http://127.0.0.1:8080", "demo", key="alice.key") as c:
        answer = c.propose("Boot_ConfigOk")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

import httpx

from swoosh.api.client._clock import HLCClock
from swoosh.api.client._core import ClientCore, KeyLike, RetryPolicy, state_params, transport_error
from swoosh.api.client.errors import RetryableError, StaleStateHash
from swoosh.api.models import DecisionsAnswer, ProjectCreated
from swoosh.workflows.answers import Accepted, DryRunAnswer
from swoosh.workflows.messages import HealthView, StateView


class _Client:
    """What both clients show of their core: the project, the last head seen, the caller-side clock."""

    _core: ClientCore

    @property
    def project_id(self) -> str:
        return self._core.project_id

    @property
    def head(self) -> str | None:
        """The last head hash this client saw (from an answer, a rejection or a read)."""
        return self._core.head

    @property
    def clock(self) -> HLCClock:
        return self._core.clock


class SwooshClient(_Client):
    """Blocking client for one project of a SWOOSH API."""

    def __init__(
        self,
        base_url: str,
        project_id: str,
        key: KeyLike | None = None,
        token: str | None = None,
        *,
        clock: HLCClock | None = None,
        goal: str = "client",
        retry: RetryPolicy | None = None,
        stale_retries: int = 3,
        timeout_s: float = 70.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._core = ClientCore(project_id, key, token, clock, goal, retry or RetryPolicy(), stale_retries)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SwooshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                try:
                    resp = self._http.request(method, path, headers=self._core.headers(attempt), **kw)
                except httpx.TransportError as err:
                    raise transport_error(err) from None
                return self._core.parse(resp)
            except RetryableError as err:
                attempt += 1
                wait = self._core.wait_for(err, attempt, started)
                if wait is None:
                    raise
                time.sleep(wait)

    def create_project(self) -> ProjectCreated:
        return ProjectCreated.model_validate(self._request("PUT", self._core.path()))

    def state(self, projection: str | Iterable[str] | None = None, at: int | None = None) -> StateView:
        """The state now, or (`at`) as it was after that index; a past state leaves `head` alone."""
        data = self._request("GET", self._core.path("/state"), params=state_params(projection, at))
        return self._core.state_view(data, past=at is not None)

    def health(self) -> HealthView:
        return HealthView.model_validate(self._request("GET", self._core.path("/health")))

    def decisions(self, after_index: int = 0, limit: int = 100) -> DecisionsAnswer:
        params = {"after_index": after_index, "limit": limit}
        return DecisionsAnswer.model_validate(self._request("GET", self._core.path("/decisions"), params=params))

    def propose(
        self,
        transition: str,
        inputs: dict[str, Any] | None = None,
        window_id: str | None = None,
        evidence: list[str] | None = None,
        idem_key: str | None = None,
        retry_stale: bool = False,
    ) -> Accepted:
        """Sign and send a proposal; return the 202 answer or raise the typed rejection."""
        idem = idem_key or self._core.idem_key(transition)
        stale_left = self._core.stale_retries if retry_stale else 0
        while True:
            head = self._core.head or self.state("meta").hash
            body = self._core.body(transition, head, inputs, window_id, evidence, idem)
            try:
                return self._core.accepted(self._request("POST", self._core.path("/transition"), json=body))
            except StaleStateHash:
                if stale_left <= 0:
                    raise
                stale_left -= 1
                self.state("meta")  # re-read: new head, and the HLC observes hlc_last

    def dry_run(
        self,
        transition: str,
        inputs: dict[str, Any] | None = None,
        window_id: str | None = None,
        evidence: list[str] | None = None,
        idem_key: str | None = None,
    ) -> DryRunAnswer:
        """What `propose` would be answered now (admission and guards), with nothing changed."""
        head = self._core.head or self.state("meta").hash
        body = self._core.body(
            transition, head, inputs, window_id, evidence, idem_key or self._core.idem_key(transition)
        )
        return self.send_dry_run(body)

    def send_dry_run(self, body: dict[str, Any]) -> DryRunAnswer:
        """Try a signed body as it is (for example one `swoosh sign` printed)."""
        data = self._request("POST", self._core.path("/transition"), params={"dry_run": "true"}, json=body)
        return DryRunAnswer.model_validate(data)


class AsyncSwooshClient(_Client):
    """Asyncio client for one project of a SWOOSH API (same API as `SwooshClient`, awaited)."""

    def __init__(
        self,
        base_url: str,
        project_id: str,
        key: KeyLike | None = None,
        token: str | None = None,
        *,
        clock: HLCClock | None = None,
        goal: str = "client",
        retry: RetryPolicy | None = None,
        stale_retries: int = 3,
        timeout_s: float = 70.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._core = ClientCore(project_id, key, token, clock, goal, retry or RetryPolicy(), stale_retries)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSwooshClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                try:
                    resp = await self._http.request(method, path, headers=self._core.headers(attempt), **kw)
                except httpx.TransportError as err:
                    raise transport_error(err) from None
                return self._core.parse(resp)
            except RetryableError as err:
                attempt += 1
                wait = self._core.wait_for(err, attempt, started)
                if wait is None:
                    raise
                await asyncio.sleep(wait)

    async def create_project(self) -> ProjectCreated:
        return ProjectCreated.model_validate(await self._request("PUT", self._core.path()))

    async def state(self, projection: str | Iterable[str] | None = None, at: int | None = None) -> StateView:
        """The state now, or (`at`) as it was after that index; a past state leaves `head` alone."""
        data = await self._request("GET", self._core.path("/state"), params=state_params(projection, at))
        return self._core.state_view(data, past=at is not None)

    async def health(self) -> HealthView:
        return HealthView.model_validate(await self._request("GET", self._core.path("/health")))

    async def decisions(self, after_index: int = 0, limit: int = 100) -> DecisionsAnswer:
        params = {"after_index": after_index, "limit": limit}
        return DecisionsAnswer.model_validate(await self._request("GET", self._core.path("/decisions"), params=params))

    async def propose(
        self,
        transition: str,
        inputs: dict[str, Any] | None = None,
        window_id: str | None = None,
        evidence: list[str] | None = None,
        idem_key: str | None = None,
        retry_stale: bool = False,
    ) -> Accepted:
        """Sign and send a proposal; return the 202 answer or raise the typed rejection."""
        idem = idem_key or self._core.idem_key(transition)
        stale_left = self._core.stale_retries if retry_stale else 0
        while True:
            head = self._core.head or (await self.state("meta")).hash
            body = self._core.body(transition, head, inputs, window_id, evidence, idem)
            try:
                return self._core.accepted(await self._request("POST", self._core.path("/transition"), json=body))
            except StaleStateHash:
                if stale_left <= 0:
                    raise
                stale_left -= 1
                await self.state("meta")

    async def dry_run(
        self,
        transition: str,
        inputs: dict[str, Any] | None = None,
        window_id: str | None = None,
        evidence: list[str] | None = None,
        idem_key: str | None = None,
    ) -> DryRunAnswer:
        """What `propose` would be answered now (admission and guards), with nothing changed."""
        head = self._core.head or (await self.state("meta")).hash
        body = self._core.body(
            transition, head, inputs, window_id, evidence, idem_key or self._core.idem_key(transition)
        )
        return await self.send_dry_run(body)

    async def send_dry_run(self, body: dict[str, Any]) -> DryRunAnswer:
        """Try a signed body as it is (for example one `swoosh sign` printed)."""
        data = await self._request("POST", self._core.path("/transition"), params={"dry_run": "true"}, json=body)
        return DryRunAnswer.model_validate(data)
