"""Typed errors of the SWOOSH Python client: one class per contract code, one per HTTP failure.

SwooshApiError
├── Rejected (400)  ─ SchemaError, BadSignature, UnauthorizedSigner, UnknownTransition,
│                     InvalidTransition, InputsHashMismatch, StaleStateHash, HlcRegression,
│                     HlcTooFarAhead, GuardFailed, Quarantined, Terminated
├── Unauthorized (401), NotFound (404), PayloadTooLarge (413)
├── Overloaded (429), Unavailable (503 or no connection)
└── UnexpectedResponse (anything else)
"""

from __future__ import annotations

from typing import Any

from swoosh.workflows.answers import GuardResult
from swoosh.workflows.errors import SwooshError


class SwooshApiError(SwooshError):
    """Root of every error the client raises."""

    status: int | None = None

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.body = body


class Rejected(SwooshApiError):
    """400: the proposal was rejected with a contract code; nothing changed."""

    code: str = ""
    status = 400

    def __init__(self, reason: str, *, body: dict[str, Any] | None = None) -> None:
        body = body or {}
        super().__init__(f"{body.get('error', self.code)}: {reason}", status=400, body=body)
        self.reason = reason
        self.failing_guard: str | None = body.get("failing_guard")
        self.head_hash: str | None = body.get("head_hash")
        self.guards = [GuardResult.model_validate(g) for g in body.get("guards") or []]


class SchemaError(Rejected):
    code = "schema"


class BadSignature(Rejected):
    code = "bad_signature"


class UnauthorizedSigner(Rejected):
    code = "unauthorized_signer"


class UnknownTransition(Rejected):
    code = "unknown_transition"


class InvalidTransition(Rejected):
    code = "invalid_transition"


class InputsHashMismatch(Rejected):
    code = "inputs_hash_mismatch"


class StaleStateHash(Rejected):
    code = "stale_state_hash"


class HlcRegression(Rejected):
    code = "hlc_regression"


class HlcTooFarAhead(Rejected):
    code = "hlc_too_far_ahead"


class GuardFailed(Rejected):
    code = "guard_failed"


class Quarantined(Rejected):
    code = "quarantined"


class Terminated(Rejected):
    code = "terminated"


REJECTIONS: dict[str, type[Rejected]] = {
    cls.code: cls
    for cls in (
        SchemaError,
        BadSignature,
        UnauthorizedSigner,
        UnknownTransition,
        InvalidTransition,
        InputsHashMismatch,
        StaleStateHash,
        HlcRegression,
        HlcTooFarAhead,
        GuardFailed,
        Quarantined,
        Terminated,
    )
}


class Unauthorized(SwooshApiError):
    status = 401


class NotFound(SwooshApiError):
    status = 404


class PayloadTooLarge(SwooshApiError):
    status = 413


class RetryableError(SwooshApiError):
    """429/503: `retry_after` seconds as the server advised (None when it gave none)."""

    def __init__(
        self, message: str, *, status: int | None = None, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status, body=body)
        self.retry_after = retry_after


class Overloaded(RetryableError):
    status = 429


class Unavailable(RetryableError):
    status = 503


class UnexpectedResponse(SwooshApiError):
    """A status the contract does not define (e.g. 500)."""


def rejection_error(body: dict[str, Any]) -> Rejected:
    """The typed error for a 400 body."""
    code = str(body.get("error", ""))
    cls = REJECTIONS.get(code, Rejected)
    return cls(str(body.get("reason", "")), body=body)
