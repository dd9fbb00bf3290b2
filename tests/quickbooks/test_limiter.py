"""The per-realm limiter: never more than N requests per window nor M in flight."""

from __future__ import annotations

import asyncio
import time

from ledgerbridge_quickbooks.limiter import RealmLimiter


async def test_in_flight_and_window_limits_hold() -> None:
    limiter = RealmLimiter(20, 3, window_seconds=0.5)
    in_flight = peak = 0
    stamps: list[float] = []

    async def call() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            stamps.append(time.monotonic())
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1

    started = time.monotonic()
    await asyncio.gather(*(call() for _ in range(45)))
    assert peak == 3
    assert time.monotonic() - started >= 1.0  # 45 requests at 20 per 0.5 s need two full windows
    for index in range(len(stamps) - 20):
        assert stamps[index + 20] - stamps[index] >= 0.5
