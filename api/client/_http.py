"""The SWOOSH Python client (sync `SwooshClient`, async `AsyncSwooshClient`) on httpx.

It signs proposals with an Ed25519 key file, keeps a caller-side HLC (observing `hlc_last` of every
read and the `hlc` of every answer), makes fresh idem keys `goal:beat:opclass:uuid`, returns typed
answers and raises one typed error per contract code (`swoosh.api.client.errors`). 429 and 503 are retried with
the same signed body (same idem_key, so a resend is answered as a duplicate, never applied twice),
honouring Retry-After within a bounded budget.

    with SwooshClient("http://127.0.0.1:8080", "demo", key="alice.key") as c:
        answer = c.propose("Boot_ConfigOk")
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swoosh.api.client._clock import HLCClock
from swoosh.api.client.errors import (
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RetryableError,
    StaleStateHash,
    SwooshApiError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    rejection_error,
)
from swoosh.api.models import DecisionsAnswer, ProjectCreated
from swoosh.workflows.answers import Accepted, DryRunAnswer
from swoosh.workflows.crypto import private_key_from_text, signer_id
from swoosh.workflows.hlc import HLC
from swoosh.workflows.messages import HealthView, StateView
from swoosh.workflows.proposal import build_body

RETRY_HEADER = "X-Swoosh-Retry"
KeyLike = Ed25519PrivateKey | str | Path


def load_key(key: KeyLike) -> Ed25519PrivateKey:
    """An Ed25519 private key, or one read from a key file (`swoosh keygen` format)."""
    if isinstance(key, Ed25519PrivateKey):
        return key
    try:
        return private_key_from_text(Path(key).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SwooshApiError(f"cannot read key file {key}: {err}") from None


@dataclass(frozen=True)
class RetryPolicy:
    """How 429/503 and connection failures are retried: attempts, per-wait cap, total budget."""

    attempts: int = 5
    max_wait_s: float = 10.0
    budget_s: float = 30.0
    backoff_s: float = 0.2


class _Core:
    """Request building and answer parsing shared by the sync and async clients (no I/O here)."""

    def __init__(
        self,
        project_id: str,
        key: KeyLike | None,
        token: str | None,
        clock: HLCClock | None,
        goal: str,
        retry: RetryPolicy,
        stale_retries: int,
    ) -> None:
        self.project_id = project_id
        self.key = load_key(key) if key is not None else None
        self.token = token
        self.clock = clock or HLCClock()
        self.goal = goal
        self.retry = retry
        self.stale_retries = stale_retries
        self.head: str | None = None
        self._beat = itertools.count(1)

    @property
    def signer(self) -> str:
        return signer_id(self._key().public_key())

    def _key(self) -> Ed25519PrivateKey:
        if self.key is None:
            raise SwooshApiError("this client has no signing key")
        return self.key

    def path(self, suffix: str = "") -> str:
        return f"/v1/projects/{self.project_id}{suffix}"

    def headers(self, retry: int = 0) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if retry:
            headers[RETRY_HEADER] = str(retry)
        return headers

    def idem_key(self, transition: str) -> str:
        return f"{self.goal}:{next(self._beat)}:{transition}:{uuid.uuid4().hex}"

    def body(
        self,
        transition: str,
        head: str,
        inputs: dict[str, Any] | None,
        window_id: str | None,
        evidence: list[str] | None,
        idem_key: str,
    ) -> dict[str, Any]:
        return build_body(
            self._key(),
            transition=transition,
            current_state_hash=head,
            idem_key=idem_key,
            hlc=self.clock.now().format(),
            inputs=inputs,
            project_id=self.project_id,
            window_id=window_id,
            evidence=evidence,
        )

    def observe(self, hlc: str | None) -> None:
        if hlc:
            try:
                self.clock.observe(HLC.parse(hlc))
            except ValueError:
                pass

    def parse(self, resp: httpx.Response) -> Any:
        """The JSON of a 2xx answer; raise the typed error for anything else."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        status = resp.status_code
        if 200 <= status < 300:
            return data
        reason = data.get("reason", resp.text[:200]) if isinstance(data, dict) else resp.text[:200]
        if status == 400 and isinstance(data, dict) and "error" in data:
            err = rejection_error(data)
            if err.head_hash:
                self.head = err.head_hash
            raise err
        if status == 401:
            raise Unauthorized(reason, status=status, body=data)
        if status == 404:
            raise NotFound(reason, status=status, body=data)
        if status == 413:
            raise PayloadTooLarge(reason, status=status, body=data)
        if status in (429, 503):
            cls = Overloaded if status == 429 else Unavailable
            raise cls(reason, status=status, body=data, retry_after=_retry_after(resp.headers.get("Retry-After")))
        raise UnexpectedResponse(f"HTTP {status}: {reason}", status=status, body=data)

    def wait_for(self, err: RetryableError, attempt: int, started: float) -> float | None:
        """Seconds to wait before retry `attempt` (1-based), or None when the budget is spent."""
        if attempt > self.retry.attempts:
            return None
        wait = err.retry_after if err.retry_after is not None else self.retry.backoff_s * 2 ** (attempt - 1)
        wait = min(max(wait, 0.0), self.retry.max_wait_s)
        if time.monotonic() - started + wait > self.retry.budget_s:
            return None
        return wait

    def accepted(self, data: Any) -> Accepted:
        answer = Accepted.model_validate(data)
        self.head = answer.state_post_hash
        self.observe(answer.hlc)
        return answer

    def state_view(self, data: Any, past: bool = False) -> StateView:
        view = StateView.model_validate(data)
        if not past:
            self.head = view.hash
        self.observe(view.hlc_last)
        return view


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _projection(projection: str | Iterable[str] | None) -> dict[str, str]:
    if projection is None:
        return {}
    return {"projection": projection if isinstance(projection, str) else ",".join(projection)}


def _state_params(projection: str | Iterable[str] | None, at: int | None) -> dict[str, str]:
    params = _projection(projection)
    if at is not None:
        params["at"] = str(at)
    return params


def _transport_error(err: httpx.TransportError) -> Unavailable:
    return Unavailable(f"cannot reach the SWOOSH API: {type(err).__name__}", retry_after=None)


class SwooshClient:
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
        self._core = _Core(project_id, key, token, clock, goal, retry or RetryPolicy(), stale_retries)
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport)

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
                    raise _transport_error(err) from None
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
        data = self._request("GET", self._core.path("/state"), params=_state_params(projection, at))
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


class AsyncSwooshClient:
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
        self._core = _Core(project_id, key, token, clock, goal, retry or RetryPolicy(), stale_retries)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    @property
    def project_id(self) -> str:
        return self._core.project_id

    @property
    def head(self) -> str | None:
        return self._core.head

    @property
    def clock(self) -> HLCClock:
        return self._core.clock

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
                    raise _transport_error(err) from None
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
        data = await self._request("GET", self._core.path("/state"), params=_state_params(projection, at))
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
