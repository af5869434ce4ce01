"""The worker's fact cache: the latest fact from each provider, refreshed out of band, served per decision.

`FactsService` owns one `FactCache` per provider. A cache refreshes when its jittered due time has
passed (single-flight: concurrent callers share one upstream fetch), keeps serving its last good fact
through failures for `stale_grace_ms`, and records a failure fact after that. The guard activity calls
`facts(now_ms, …)`; a background task (started by `start()` / `async with`) keeps the caches warm.

Licence first (design brief §9): only KACHING may be called before licensing. HTTP-mode MCP,
BACKBEAT and SHHH are called, and their facts served, only while network use is allowed: per call
when the caller passes `network_allowed` (use `network_allowed(state)` for the project), else once
this worker has seen a verified valid licence (and until it sees a denied or expired one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from swoosh.activities.backbeat import BarShape, EmbeddedBeatProvider, HttpBeatProvider, Schedule
from swoosh.activities.config import ProvidersConfig, ProviderSettings
from swoosh.activities.kaching import EmbeddedLicenceProvider, HttpLicenceProvider
from swoosh.activities.mcp import EmbeddedMcpProvider, HttpMcpProvider
from swoosh.activities.shhh import EmbeddedPolicyProvider, HttpPolicyProvider
from swoosh.guards.facts import BeatFrame, Facts, LicenseFact, McpFact, PolicyFact

log = logging.getLogger("swoosh.activities.facts")

T = TypeVar("T")
BLOCKED = "outbound calls blocked until the project has passed LICENSE_CHECK (or after its licence grace expired)"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def network_allowed(state: Mapping[str, Any]) -> bool:
    """True when a project may reach the ecosystem: licensed, and its licence grace has not expired."""
    boot, control = state.get("boot") or {}, state.get("control") or {}
    comms = (control.get("license") or {}).get("external_comms")
    return boot.get("phase") == "LICENSED" and comms is True


class FactCache(Generic[T]):
    """One provider's latest fact: jittered refresh, single-flight fetches, stale-on-error grace."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[T]],
        *,
        good: Callable[[T], bool],
        fetched_at: Callable[[T], int],
        refresh_ms: int,
        jitter_ms: int,
        retry_ms: int,
        stale_grace_ms: int,
        clock: Callable[[], int],
        rng: random.Random,
        valid_until: Callable[[T], int | None] | None = None,
        on_result: Callable[[T], None] | None = None,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self._good = good
        self._fetched_at = fetched_at
        self.refresh_ms, self.jitter_ms, self.retry_ms = refresh_ms, jitter_ms, retry_ms
        self.stale_grace_ms = stale_grace_ms
        self._clock = clock
        self._rng = rng
        self._valid_until = valid_until
        self._on_result = on_result
        self._value: T | None = None
        self._last_good: T | None = None
        self.last_result: T | None = None
        self.fetches = 0
        self.next_refresh_at_ms: int | None = None
        self._inflight: asyncio.Future[T] | None = None

    @property
    def value(self) -> T | None:
        return self._value

    def due(self) -> bool:
        """Whether the next `get()` would fetch: nothing cached, due time passed, or the fact ran out."""
        if self._value is None or self.next_refresh_at_ms is None:
            return True
        now = self._clock()
        if now >= self.next_refresh_at_ms:
            return True
        until = self._valid_until(self._value) if self._valid_until is not None else None
        return until is not None and now >= until

    async def get(self) -> T:
        """The cached fact, fetched first when due."""
        if self.due():
            return await self.refresh()
        return self._value  # type: ignore[return-value]  # due() is False only with a value cached

    async def refresh(self) -> T:
        """Fetch now, or join the fetch already in flight (one upstream call however many callers)."""
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._fetch_once())
        # shield: a caller that is cancelled (activity timeout) must not cancel the shared fetch.
        return await asyncio.shield(self._inflight)

    def put(self, value: T) -> None:
        """Store a fact that arrived by push (e.g. a BACKBEAT frame posted to the API)."""
        self._record(value)

    async def _fetch_once(self) -> T:
        self.fetches += 1
        try:
            value = await self._fetch()
        except Exception:
            self.next_refresh_at_ms = self._clock() + self._jittered(self.retry_ms)
            raise
        finally:
            self._inflight = None
        return self._record(value)

    def _record(self, value: T) -> T:
        now = self._clock()
        self.last_result = value
        if self._good(value):
            self._value = self._last_good = value
            self.next_refresh_at_ms = now + self._jittered(self.refresh_ms)
        else:
            good = self._last_good
            if good is None or now - self._fetched_at(good) > self.stale_grace_ms:
                self._value = value
            self.next_refresh_at_ms = now + self._jittered(self.retry_ms)
        if self._on_result is not None:
            self._on_result(value)
        return self._value  # type: ignore[return-value]  # just set, or kept as the last good fact

    def _jittered(self, interval: int) -> int:
        # Refresh early, never late, so the fact's age stays within the interval; spread across workers.
        return interval - self._rng.randint(0, min(self.jitter_ms, interval - 1))


class FactsService:
    """Builds `guards.facts.Facts` for decisions from the providers configured in the process settings."""

    def __init__(
        self, settings: ProvidersConfig, *, clock: Callable[[], int] | None = None, seed: int | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or wall_clock_ms
        self._rng = random.Random(seed)
        self._clients: list[httpx.AsyncClient] = []
        self._task: asyncio.Task[None] | None = None
        self._licensed = False
        k, m, b, s = settings.kaching, settings.mcp, settings.backbeat, settings.shhh

        if k.mode == "http":
            lic: Any = HttpLicenceProvider(
                self._client(k), k.resolved_token, k.resolved_public_key, self.clock, k.max_skew_ms
            )
        else:
            lic = EmbeddedLicenceProvider(
                k.license_file or settings.data_dir / "license.json", k.resolved_public_key, self.clock
            )
        self.license_cache: FactCache[LicenseFact] = self._cache(
            "license",
            k,
            lic.license,
            lambda f: f.status == "valid" and f.verified,
            lambda f: f.fetched_at_ms,
            on_result=self._gate,
        )

        mcp: Any = (
            HttpMcpProvider(self._client(m), m.probe, self.clock)
            if m.mode == "http"
            else EmbeddedMcpProvider(m.tools, self.clock)
        )
        self.mcp_cache: FactCache[McpFact] = self._cache(
            "mcp", m, mcp.mcp, lambda f: f.reachable, lambda f: f.fetched_at_ms
        )

        self.schedule = Schedule.from_settings(b)
        self.embedded_beat = EmbeddedBeatProvider(self.schedule, b.pressure)
        self.http_beat: HttpBeatProvider | None = None
        self.beat_cache: FactCache[BeatFrame | None] | None = None
        if b.mode == "http":
            beat = HttpBeatProvider(self._client(b), self.clock, b.max_skew_ms, BarShape.of(self.schedule))
            self.http_beat = beat
            self.beat_cache = self._cache(
                "backbeat",
                b,
                lambda: beat.beat(self.clock()),
                lambda f: f is not None,
                lambda f: f.received_at_ms if f is not None else 0,
                valid_until=lambda f: f.deadline_at_ms if f is not None else None,
            )

        self.policy_provider: EmbeddedPolicyProvider | HttpPolicyProvider
        if s.mode == "http":
            self.policy_provider = HttpPolicyProvider(self._client(s), s.rules, s.builtin, self.clock, s.refresh_ms)
        else:
            self.policy_provider = EmbeddedPolicyProvider(s.rules, s.builtin, self.clock)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FactsService:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the background refresher (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._refresher(), name="swoosh-facts-refresher")

    async def aclose(self) -> None:
        """Stop the refresher and close every HTTP client."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in self._clients:
            await client.aclose()

    # ------------------------------------------------------------------ the guard activity's API
    @property
    def licence_passed(self) -> bool:
        """Whether this worker has seen a verified valid licence (and no denial or expiry since)."""
        return self._licensed

    async def facts(
        self,
        now_ms: int,
        *,
        network_allowed: bool | None = None,
        inputs: Mapping[str, Any] | None = None,
        evidence: Sequence[str] = (),
    ) -> Facts:
        """The facts for a decision at `now_ms` (the workflow's time).

        `network_allowed`: the project's own gate (`network_allowed(state)`); None = this worker's
        licence gate. `inputs`/`evidence`: the proposal's, for an external SHHH verdict (HTTP mode);
        without `inputs` no external verdict is asked for.
        """
        lic = await self._license_fact(now_ms)  # first: it may open this worker's licence gate
        allowed = self._licensed if network_allowed is None else network_allowed
        mcp, beat, policy = await asyncio.gather(
            self._mcp_fact(now_ms, allowed),
            self._beat_fact(now_ms, allowed),
            self._policy_fact(allowed, inputs, evidence),
        )
        max_age = max(self.settings.kaching.max_age_ms, self.settings.mcp.max_age_ms)
        return Facts(now_ms=now_ms, license=lic, mcp=mcp, beat=beat, policy=policy, max_fact_age_ms=max_age)

    async def refresh_all(self, *, network_allowed: bool | None = None) -> dict[str, str]:
        """Refresh every provider now (the licence always; the others only where network use is allowed)."""
        await self.license_cache.refresh()
        allowed = self._licensed if network_allowed is None else network_allowed
        jobs = [c.refresh() for c in self._caches()[1:] if allowed or not self._outbound(c.name)]
        await asyncio.gather(*jobs)
        return self.summary()

    def ingest_beat(self, payload: Mapping[str, Any]) -> BeatFrame:
        """Accept a pushed `backbeat.beatframe.v1` frame (HTTP mode); ValueError when malformed or skewed."""
        if self.http_beat is None or self.beat_cache is None:
            raise ValueError("backbeat is in embedded mode: pushed frames are not used")
        frame = self.http_beat.ingest(payload)
        self.beat_cache.put(frame)
        return frame

    def summary(self) -> dict[str, str]:
        """One line per provider for health output (no secrets)."""
        out = {}
        lic = self.license_cache.value
        out["license"] = "unknown" if lic is None else lic.status + ("" if lic.verified else " (unverified)")
        mcp = self.mcp_cache.value
        out["mcp"] = "unknown" if mcp is None else ("reachable" if mcp.reachable else f"unreachable: {mcp.detail}")
        if self.beat_cache is None:
            out["backbeat"] = "embedded schedule"
        else:
            frame = self.beat_cache.value
            out["backbeat"] = (
                frame.window_id
                if frame is not None
                else f"no frame: {self.http_beat.last_error if self.http_beat else ''}"
            )
        out["shhh"] = self.settings.shhh.mode
        return out

    # ------------------------------------------------------------------ internals
    async def _license_fact(self, now_ms: int) -> LicenseFact:
        fact = await self.license_cache.get()
        age, max_age = now_ms - fact.fetched_at_ms, self.settings.kaching.max_age_ms
        if age > max_age and fact.status == "valid":
            # An old "valid" is not a current one: report it as an outage so the grace path applies.
            detail = f"no fresh licence verdict for {age} ms (max {max_age} ms)"
            return fact.model_copy(update={"status": "unreachable", "verified": False, "detail": detail})
        return fact

    async def _mcp_fact(self, now_ms: int, allowed: bool) -> McpFact:
        if self._outbound("mcp") and not allowed:
            return McpFact(reachable=False, fetched_at_ms=now_ms, detail=BLOCKED)
        fact = await self.mcp_cache.get()
        age, max_age = now_ms - fact.fetched_at_ms, self.settings.mcp.max_age_ms
        if age > max_age and fact.reachable:
            return fact.model_copy(
                update={"reachable": False, "detail": f"MCP fact is {age} ms old (max {max_age} ms)"}
            )
        return fact

    async def _beat_fact(self, now_ms: int, allowed: bool) -> BeatFrame | None:
        if self.beat_cache is None:
            return await self.embedded_beat.beat(now_ms)
        if not allowed:
            return None
        frame = await self.beat_cache.get()
        if frame is not None and now_ms - frame.received_at_ms > self.settings.backbeat.max_age_ms:
            return None
        return frame

    async def _policy_fact(
        self, allowed: bool, inputs: Mapping[str, Any] | None, evidence: Sequence[str]
    ) -> PolicyFact:
        p = self.policy_provider
        if isinstance(p, EmbeddedPolicyProvider) or inputs is None:
            return PolicyFact(rules=p.rules, builtin=p.builtin, fetched_at_ms=self.clock())
        if not allowed:
            return p.blocked(BLOCKED)
        return await p.policy(dict(inputs), list(evidence))

    def _gate(self, fact: LicenseFact) -> None:
        if fact.status == "valid" and fact.verified:
            self._licensed = True
        elif fact.status in ("denied", "expired"):
            self._licensed = False

    def _outbound(self, name: str) -> bool:
        section = {"mcp": self.settings.mcp, "backbeat": self.settings.backbeat, "shhh": self.settings.shhh}[name]
        return section.mode == "http"

    def _caches(self) -> list[FactCache[Any]]:
        caches: list[FactCache[Any]] = [self.license_cache, self.mcp_cache]
        if self.beat_cache is not None:
            caches.append(self.beat_cache)
        return caches

    async def _refresher(self) -> None:
        while True:
            jobs = [
                c.refresh()
                for c in self._caches()
                if c.due() and (c.name == "license" or self._licensed or not self._outbound(c.name))
            ]
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):  # a provider bug: keep the other caches fresh regardless
                    log.error("fact refresh failed: %r", r)
            await asyncio.sleep(self._tick_s())

    def _tick_s(self) -> float:
        now = self.clock()
        nexts = [c.next_refresh_at_ms for c in self._caches() if c.next_refresh_at_ms is not None]
        wait_ms = min((n - now for n in nexts), default=1000)
        return min(max(wait_ms, 50), 1000) / 1000

    def _cache(
        self,
        name: str,
        s: ProviderSettings,
        fetch: Callable[[], Awaitable[T]],
        good: Callable[[T], bool],
        fetched_at: Callable[[T], int],
        **hooks: Any,
    ) -> FactCache[T]:
        return FactCache(
            name, fetch, good=good, fetched_at=fetched_at, refresh_ms=s.refresh_ms, jitter_ms=s.jitter_ms,
            retry_ms=s.retry_ms, stale_grace_ms=s.stale_grace_ms, clock=self.clock, rng=self._rng, **hooks,
        )  # fmt: skip

    def _client(self, s: ProviderSettings) -> httpx.AsyncClient:
        timeout = httpx.Timeout(s.timeout_ms / 1000, connect=s.connect_timeout_ms / 1000)
        # trust_env=False: proxy variables must not reroute calls meant for loopback or a configured host.
        client = httpx.AsyncClient(base_url=s.base_url or "", timeout=timeout, trust_env=False, follow_redirects=False)
        self._clients.append(client)
        return client
