"""SWOOSH's exception hierarchy and the contract's stable rejection codes."""

from __future__ import annotations

from typing import Literal

RejectionCode = Literal[
    "schema",
    "bad_signature",
    "unauthorized_signer",
    "unknown_transition",
    "invalid_transition",
    "inputs_hash_mismatch",
    "stale_state_hash",
    "hlc_regression",
    "hlc_too_far_ahead",
    "guard_failed",
    "quarantined",
    "terminated",
]
REJECTION_CODES: tuple[str, ...] = RejectionCode.__args__  # type: ignore[attr-defined]

# A reason may quote what a caller sent (a malformed hlc, unknown input names): answers and logs
# keep at most this much of it, so a megabyte of input never becomes a megabyte of reason.
REASON_CHARS = 1000


def clip_text(text: str, limit: int = REASON_CHARS) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SwooshError(Exception):
    """Root of every error SWOOSH raises on purpose."""


class StatechartError(SwooshError):
    """The statechart YAML is malformed or inconsistent."""


class KeyringError(SwooshError):
    """A keyring or key file cannot be read or is malformed."""


class ConfigError(SwooshError):
    """Configuration is missing or invalid."""


class ProposalError(SwooshError):
    """A proposal was rejected; carries the contract's stable code."""

    def __init__(self, code: RejectionCode, reason: str, failing_guard: str | None = None) -> None:
        reason = clip_text(reason)
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.failing_guard = failing_guard


class TemporalUnreachable(SwooshError, RuntimeError):
    """Temporal cannot be reached as configured (the message says where and what to check).

    Also a RuntimeError, as the SDK's own connection failures are, so callers that retry those keep working.
    """
