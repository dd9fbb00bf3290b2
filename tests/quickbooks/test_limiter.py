"""The per-realm limiter: never more than N requests per window nor M in flight."""

from __future__ import annotations

import asyncio
import time

from ledgerbridge_quickbooks.limiter import realm_limiter
from ledgerbridge_quickbooks.settings import Limits


async def test_never_more_than_the_in_flight_cap_at_once() -> None:
    limiter = realm_limiter(Limits(requests_per_minute=1000, max_in_flight=3))
    in_flight = peak = 0

    async def call() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(12)))
    assert peak == 3


async def test_no_window_holds_more_than_the_rate() -> None:
    limiter = realm_limiter(Limits(requests_per_minute=20, max_in_flight=3, time_scale=120))  # a 0.5 s minute
    stamps: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            stamps.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(call() for _ in range(45)))
    assert time.monotonic() - started >= 1.0  # 45 requests at 20 per 0.5 s need two full windows
    for index in range(len(stamps) - 20):
        assert stamps[index + 20] - stamps[index] >= 0.5
