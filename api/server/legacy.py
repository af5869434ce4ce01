"""The legacy system (WHOOSH) as SWOOSH reaches it during a migration: mutations forwarded, state read.

Unreachable, timing out or answering 5xx is a 503 with Retry-After to the caller (never a silent
drop); a 429 is passed on as 429. Any other answer is the legacy system's decision, relayed as it was
given. Its state (`GET {legacy}/state`) is read only to compare phases, and never raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from swoosh.api.server.migration import MigrationSettings
from swoosh.api.server.problems import OverloadedProblem, UnavailableProblem

MAX_ANSWER_BYTES = 1024 * 1024
FORWARDED_HEADERS = ("Idempotency-Key", "X-HLC", "X-Window-Id", "traceparent", "tracestate")


@dataclass(frozen=True)
class LegacyAnswer:
    """The legacy system's answer: status, JSON body (None when not JSON), and whether it accepted."""

    status: int
    body: Any

    @property
    def accepted(self) -> bool:
        if not 200 <= self.status < 300:
            return False
        if isinstance(self.body, Mapping):
            return self.body.get("success") is not False and self.body.get("accepted") is not False
        return True

    def describe(self) -> str:
        if self.accepted:
            return "accepted"
        code = self.body.get("error") if isinstance(self.body, Mapping) else None
        return f"rejected (HTTP {self.status}{', ' + str(code)[:64] if code else ''})"


class LegacyUnavailable(UnavailableProblem):
    """The legacy system could not decide (unreachable, timed out, 5xx): nothing was decided by SWOOSH either."""


class LegacyClient:
    """HTTP to the legacy system, with the migration settings' token and timeout."""

    def __init__(self, settings: MigrationSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        timeout = settings.legacy_timeout_ms / 1000
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)),
            transport=transport,
            trust_env=False,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self, given: Mapping[str, str], project_id: str | None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        for name in FORWARDED_HEADERS:
            if name in given:
                headers[name] = given[name]
        if project_id is not None:
            headers["X-Project-Id"] = project_id
        token = self.settings.resolved_legacy_token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def post(
        self, base_url: str, path: str, raw: bytes, given: Mapping[str, str], project_id: str | None
    ) -> LegacyAnswer:
        """Forward a mutation as it was sent; LegacyUnavailable / OverloadedProblem when it was not decided."""
        retry = self.settings.retry_after_s
        try:
            async with self._http.stream(
                "POST", base_url + path, content=raw, headers=self._headers(given, project_id)
            ) as response:
                data = await _read_bounded(response)
        except httpx.TimeoutException:
            raise LegacyUnavailable("the legacy system did not answer in time; resend", retry) from None
        except httpx.HTTPError as err:
            raise LegacyUnavailable(
                f"the legacy system cannot be reached ({type(err).__name__}); resend", retry
            ) from None
        if response.status_code == 429:
            raise OverloadedProblem("the legacy system is at its limit; resend later", retry)
        if response.status_code >= 500:
            raise LegacyUnavailable(f"the legacy system answered HTTP {response.status_code}; resend", retry)
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        return LegacyAnswer(response.status_code, body)

    async def state(self, base_url: str, project_id: str) -> dict[str, Any] | None:
        """The legacy system's state of a project (its own JSON), or None when it cannot be read."""
        try:
            async with self._http.stream(
                "GET", f"{base_url}/state", params={"project_id": project_id}, headers=self._headers({}, project_id)
            ) as response:
                if response.status_code != 200:
                    return None
                value = json.loads(await _read_bounded(response))
        except (httpx.HTTPError, ValueError):
            return None
        return value if isinstance(value, dict) else None


async def _read_bounded(response: httpx.Response) -> bytes:
    buf = bytearray()
    async for chunk in response.aiter_bytes():
        buf += chunk
        if len(buf) > MAX_ANSWER_BYTES:
            raise httpx.DecodingError("the legacy system's answer is over 1 MiB")
    return bytes(buf)


def dig(document: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (`council.status`) of a JSON object, or None."""
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
