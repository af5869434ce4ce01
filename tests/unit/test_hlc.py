"""HLC: the contract's text form, the total order with its tie-break, max offset, and the send/receive rules."""

from __future__ import annotations

import pytest

from swoosh.api.client import HLCClock
from swoosh.workflows.hlc import HLC, HLCFormatError, order_key, too_far_ahead

TEXT = "2025-10-19T01:23:45.678+00:00#1234"
WALL = 1_760_837_025_678  # 2025-10-19T01:23:45.678Z in ms since the epoch


def test_hlc_parse_reads_wall_ms_and_counter() -> None:
    assert HLC.parse(TEXT) == HLC(WALL, 1234)


def test_hlc_format_writes_the_contract_form() -> None:
    assert HLC(WALL, 1234).format() == TEXT
    assert str(HLC(WALL, 0)) == "2025-10-19T01:23:45.678+00:00#0"


def test_hlc_format_pads_milliseconds() -> None:
    assert HLC(5, 0).format() == "1970-01-01T00:00:00.005+00:00#0"


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:00.000+00:00#0",
        "2025-10-19T01:23:45.678+00:00#0",
        "2024-02-29T23:59:59.999+00:00#999999999999999999",
        "2099-12-31T00:00:00.001+00:00#7",
    ],
)
def test_hlc_parse_format_round_trip(text: str) -> None:
    assert HLC.parse(text).format() == text


def test_hlc_format_parse_round_trip_from_value() -> None:
    value = HLC(1_700_000_000_123, 42)
    assert HLC.parse(value.format()) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2025-02-30T00:00:00.000+00:00#0", "bad date"),
        ("2025-13-01T00:00:00.000+00:00#0", "bad month"),
        ("2025-10-19T24:00:00.000+00:00#0", "bad hour"),
        ("2025-10-19T01:23:45.678+00:00", "missing counter"),
        ("2025-10-19T01:23:45.678+00:00#", "empty counter"),
        ("2025-10-19T01:23:45.678+00:00#01", "leading zero in counter"),
        ("2025-10-19T01:23:45.678+00:00#-1", "negative counter"),
        ("2025-10-19T01:23:45.678+01:00#1", "non-UTC offset"),
        ("2025-10-19T01:23:45.678Z#1", "Z instead of +00:00"),
        ("2025-10-19T01:23:45+00:00#1", "no milliseconds"),
        ("2025-10-19T01:23:45.6789+00:00#1", "microseconds"),
        ("2025-10-19 01:23:45.678+00:00#1", "space separator"),
        ("", "empty"),
    ],
)
def test_hlc_parse_rejects_invalid_forms(text: str, why: str) -> None:
    with pytest.raises(HLCFormatError):
        HLC.parse(text)


def test_hlc_parse_rejects_non_string() -> None:
    with pytest.raises(HLCFormatError, match="must be a string"):
        HLC.parse(1234)  # type: ignore[arg-type]


def test_hlc_format_error_is_a_value_error() -> None:
    assert issubclass(HLCFormatError, ValueError)


def test_hlc_parse_rejects_trailing_newline() -> None:
    with pytest.raises(HLCFormatError):
        HLC.parse(TEXT + "\n")


def test_hlc_parse_rejects_non_ascii_digits() -> None:
    with pytest.raises(HLCFormatError):
        HLC.parse("٢٠٢٥-10-19T01:23:45.678+00:00#1")


def test_hlc_orders_by_wall_then_counter() -> None:
    assert HLC(1, 99) < HLC(2, 0)
    assert HLC(2, 0) < HLC(2, 1)
    assert sorted([HLC(2, 1), HLC(1, 5), HLC(2, 0)]) == [HLC(1, 5), HLC(2, 0), HLC(2, 1)]


def test_order_key_breaks_ties_by_signer() -> None:
    t = HLC(10, 3)
    assert order_key(t, "hmmm:pubkey:A", "z") < order_key(t, "hmmm:pubkey:B", "a")


def test_order_key_breaks_signer_ties_by_idem_key() -> None:
    t = HLC(10, 3)
    assert order_key(t, "hmmm:pubkey:A", "k1") < order_key(t, "hmmm:pubkey:A", "k2")


def test_order_key_puts_hlc_before_tie_break() -> None:
    assert order_key(HLC(10, 3), "z", "z") < order_key(HLC(10, 4), "a", "a")


def test_too_far_ahead_allows_up_to_the_max_offset() -> None:
    assert not too_far_ahead(HLC(1_000 + 500, 0), now_ms=1_000, max_offset_ms=500)


def test_too_far_ahead_refuses_beyond_the_max_offset() -> None:
    assert too_far_ahead(HLC(1_000 + 501, 0), now_ms=1_000, max_offset_ms=500)


def test_too_far_ahead_never_refuses_the_past() -> None:
    assert not too_far_ahead(HLC(0, 0), now_ms=1_000_000, max_offset_ms=0)


class FakeClock:
    """A physical clock the test sets by hand."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_hlcclock_now_resets_counter_when_wall_advances() -> None:
    pt = FakeClock(1_000)
    clock = HLCClock(pt)
    clock.now()
    clock.now()
    pt.ms = 1_005
    assert clock.now() == HLC(1_005, 0)


def test_hlcclock_now_increments_counter_when_wall_is_stuck() -> None:
    clock = HLCClock(FakeClock(1_000))
    assert [clock.now() for _ in range(3)] == [HLC(1_000, 0), HLC(1_000, 1), HLC(1_000, 2)]


def test_hlcclock_now_stays_monotonic_when_physical_clock_goes_backwards() -> None:
    pt = FakeClock(2_000)
    clock = HLCClock(pt)
    first = clock.now()
    pt.ms = 1_000
    second, third = clock.now(), clock.now()
    assert first < second < third
    assert second == HLC(2_000, 1) and third == HLC(2_000, 2)


def test_hlcclock_last_is_the_latest_timestamp() -> None:
    clock = HLCClock(FakeClock(7))
    stamp = clock.now()
    assert clock.last == stamp


def test_hlcclock_observe_jumps_past_a_remote_ahead() -> None:
    clock = HLCClock(FakeClock(1_000))
    clock.now()
    assert clock.observe(HLC(5_000, 7)) == HLC(5_000, 8)
    assert clock.now() == HLC(5_000, 9)


def test_hlcclock_observe_same_wall_takes_max_counter_plus_one() -> None:
    clock = HLCClock(FakeClock(1_000))
    clock.now()
    clock.now()  # (1000, 1)
    assert clock.observe(HLC(1_000, 5)) == HLC(1_000, 6)


def test_hlcclock_observe_remote_behind_increments_own_counter() -> None:
    clock = HLCClock(FakeClock(1_000))
    clock.now()  # (1000, 0)
    assert clock.observe(HLC(10, 50)) == HLC(1_000, 1)


def test_hlcclock_observe_physical_ahead_resets_counter() -> None:
    pt = FakeClock(1_000)
    clock = HLCClock(pt)
    clock.now()
    pt.ms = 9_000
    assert clock.observe(HLC(5_000, 3)) == HLC(9_000, 0)


def test_hlcclock_uses_real_time_by_default() -> None:
    stamp = HLCClock().now()
    assert stamp.wall_ms > 1_700_000_000_000
