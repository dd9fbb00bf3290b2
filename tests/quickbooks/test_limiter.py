"""The per-realm limiter: never more than N requests per window nor M in flight."""

from __future__ import annotations

import asyncio
import time

from ledgerbridge_quickbooks.limiter import Limiters


async def test_never_more_than_the_in_flight_cap_at_once() -> None:
    limiter = Limiters(1000, 3, window_seconds=60).for_realm("123")
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
    limiter = Limiters(20, 3, window_seconds=0.5).for_realm("123")
    stamps: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            stamps.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(call() for _ in range(45)))
    assert time.monotonic() - started >= 1.0  # 45 requests at 20 per 0.5 s need two full windows
    for index in range(len(stamps) - 20):
        assert stamps[index + 20] - stamps[index] >= 0.5


def test_each_realm_has_its_own_limiter() -> None:
    limiters = Limiters(20, 3, window_seconds=0.5)
    assert limiters.for_realm("1") is limiters.for_realm("1")
    assert limiters.for_realm("1") is not limiters.for_realm("2")
