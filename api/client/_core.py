"""What the sync and async clients share, with no I/O: keys, request headers and signed bodies, answers.

`ClientCore` builds each request (bearer token, retry count, a signed proposal body with the caller's
HLC and a fresh idem key), turns each answer into a typed value or the typed error of its status or
contract code (`errors.py`), and says how long to wait before a retry (`RetryPolicy`).
"""

from __future__ import annotations

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
    SwooshApiError,
    Unauthorized,
    Unavailable,
    UnexpectedResponse,
    rejection_error,
)
from swoosh.workflows.answers import Accepted
from swoosh.workflows.crypto import private_key_from_text, signer_id
from swoosh.workflows.hlc import HLC
from swoosh.workflows.messages import StateView
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


class ClientCore:
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


def state_params(projection: str | Iterable[str] | None, at: int | None) -> dict[str, str]:
    params = _projection(projection)
    if at is not None:
        params["at"] = str(at)
    return params


def transport_error(err: httpx.TransportError) -> Unavailable:
    return Unavailable(f"cannot reach the SWOOSH API: {type(err).__name__}", retry_after=None)
