"""BACKBEAT window guard: the transition's window class is open now, in the window the proposal names."""

from __future__ import annotations

from typing import Any

from swoosh.guards.context import GuardContext
from swoosh.guards.facts import Facts
from swoosh.guards.outcome import GuardOutcome, failed, passed


def window_guard(state: dict[str, Any], inputs: dict[str, Any], facts: Facts, ctx: GuardContext) -> GuardOutcome:
    beat = facts.beat
    wanted = ctx.window_class
    if beat is None:
        return failed("window", "no BACKBEAT beat frame available")
    if ctx.window_id is None:
        return failed("window", "proposal names no window_id")
    if beat.window_id != ctx.window_id:
        return failed("window", f"window {ctx.window_id} is not the current window {beat.window_id}")
    if beat.phase != wanted:
        return failed("window", f"{wanted} window is closed: {beat.window_id} is in {beat.phase}")
    if facts.now_ms >= beat.deadline_at_ms:
        return failed(
            "window", f"{wanted} window of {beat.window_id} closed {facts.now_ms - beat.deadline_at_ms} ms ago"
        )
    left = beat.deadline_at_ms - facts.now_ms
    return passed("window", f"{wanted} window open in {beat.window_id} (beat {beat.beat_index}, {left} ms left)")
