"""Hybrid Logical Clock: the contract's text form, total order, and the caller-side send rule.

Text form: `YYYY-MM-DDTHH:MM:SS.mmm+00:00#N` — UTC wall time in milliseconds and a logical counter.
Order: by (wall ms, counter), ties broken by `(signer, idem_key)` (Kulkarni et al., "Logical
Physical Clocks", 2014). The caller-side clock (send and receive rules) is `api.clock.HLCClock`:
it reads the wall clock, which workflow code never does.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_HLC_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})\+00:00#(0|[1-9][0-9]{0,17})"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HLCFormatError(ValueError):
    """The text is not an HLC of the contract's form."""


@dataclass(frozen=True, order=True, slots=True)
class HLC:
    """A hybrid logical timestamp: wall milliseconds since the Unix epoch and a logical counter."""

    wall_ms: int
    counter: int = 0

    @classmethod
    def parse(cls, text: str) -> HLC:
        """Parse the contract's text form; raise HLCFormatError with the reason otherwise."""
        if not isinstance(text, str):
            raise HLCFormatError("hlc must be a string")
        return _parse(text)

    @classmethod
    def _parse_uncached(cls, text: str) -> HLC:
        m = _HLC_RE.fullmatch(text)
        if m is None:
            raise HLCFormatError(f"hlc {_quoted(text)} is not of the form YYYY-MM-DDTHH:MM:SS.mmm+00:00#N")
        year, month, day, hour, minute, second, millis, counter = (int(g) for g in m.groups())
        try:
            wall = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError as err:
            raise HLCFormatError(f"hlc {_quoted(text)} is not a valid date: {err}") from None
        delta = wall - _EPOCH
        wall_ms = (delta.days * 86_400 + delta.seconds) * 1000 + millis
        return cls(wall_ms, counter)

    def format(self) -> str:
        """The contract's text form."""
        seconds, millis = divmod(self.wall_ms, 1000)
        wall = datetime.fromtimestamp(seconds, tz=UTC)
        return f"{wall:%Y-%m-%dT%H:%M:%S}.{millis:03d}+00:00#{self.counter}"

    def __str__(self) -> str:
        return self.format()


def _quoted(text: str, limit: int = 64) -> str:
    """A malformed HLC as a reason quotes it: no more than `limit` characters of it."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} characters)"


@functools.lru_cache(maxsize=8192)
def _parse(text: str) -> HLC:
    # Pure and hot (several parses per proposal): memoised.
    return HLC._parse_uncached(text)


def order_key(hlc: HLC, signer: str, idem_key: str) -> tuple[int, int, str, str]:
    """The total order of proposals: HLC first, then `(signer, idem_key)` as the tie-break."""
    return (hlc.wall_ms, hlc.counter, signer, idem_key)


def too_far_ahead(hlc: HLC, now_ms: int, max_offset_ms: int) -> bool:
    """True when `hlc` is further ahead of the receiver's clock than the allowed offset."""
    return hlc.wall_ms - now_ms > max_offset_ms
