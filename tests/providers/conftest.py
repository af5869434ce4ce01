"""Provider test kit: the ecosystem simulator on an ephemeral loopback port, settings pointing at it, a fake clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from swoosh.chaos.simulator import SimHandle, running_simulator
from swoosh.worker.settings import Settings

TOKEN = "sim-token"


class FakeClock:
    """Milliseconds that move only when told (starts at the real wall clock, so simulator stamps agree)."""

    def __init__(self, now_ms: int | None = None) -> None:
        self.now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, ms: int) -> None:
        self.now_ms += ms


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_simulator() as handle:
        yield handle


def http_settings(sim: SimHandle, **sections: dict[str, Any]) -> Settings:
    """Settings with every provider in http mode against `sim`; `sections` override fields per section."""
    fast = {"mode": "http", "base_url": sim.base_url, "timeout_ms": 300, "connect_timeout_ms": 300}
    data: dict[str, Any] = {
        "kaching": {**fast, "public_key": sim.public_key, "token": TOKEN},
        "mcp": dict(fast),
        "shhh": dict(fast),
        "backbeat": dict(fast),
    }
    for name, fields in sections.items():
        data[name] = {**data.get(name, {}), **fields}
    return Settings.model_validate(data)
