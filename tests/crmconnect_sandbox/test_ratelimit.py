"""Rate limits: headers on every response and a 429 once the burst is spent, per location."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from ledgerbridge_crmconnect.sandbox.ratelimit import RateLimiter

from .conftest import LOCATION, OTHER_TOKEN, Sandbox, make_config, start

PARAMS = {"locationId": LOCATION, "email": "x@example.com"}


@pytest.fixture
async def limited() -> AsyncIterator[Sandbox]:
    # 3 requests per 10 s, time-scaled by 20 -> a 0.5 s window.
    async for sb in start(make_config(rate_limit_requests=3, time_scale=20.0)):
        yield sb


async def test_429_with_headers_then_the_window_reopens(limited: Sandbox) -> None:
    remaining = []
    for _ in range(3):
        r = await limited.api.get("/contacts/search/duplicate", params=PARAMS)
        assert r.status_code == 200
        remaining.append(r.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = await limited.api.get("/contacts/search/duplicate", params=PARAMS)
    assert refused.status_code == 429
    assert refused.json() == {
        "statusCode": 429,
        "message": "Too many requests, please try again later.",
        "error": "Too Many Requests",
    }
    assert refused.headers["X-RateLimit-Max"] == "3" and refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Interval-Milliseconds"] == "500"
    assert refused.headers["X-RateLimit-Limit-Daily"] == "200000"
    assert refused.headers["X-RateLimit-Daily-Remaining"] == "199997"
    # Another location's token has its own bucket.
    other = await limited.api.get(
        "/contacts/search/duplicate",
        headers={"Authorization": f"Bearer {OTHER_TOKEN}"},
        params={**PARAMS, "locationId": "locSandbox0000000002"},
    )
    assert other.status_code == 200
    await asyncio.sleep(0.55)
    assert (await limited.api.get("/contacts/search/duplicate", params=PARAMS)).status_code == 200


def test_daily_limit() -> None:
    clock = [0.0]
    limiter = RateLimiter(lambda: 100, lambda: 10.0, lambda: 2, clock=lambda: clock[0])
    assert limiter.hit("c", "l").allowed and limiter.hit("c", "l").allowed
    clock[0] = 60.0  # a fresh burst window does not refill the daily quota
    verdict = limiter.hit("c", "l")
    assert not verdict.allowed and verdict.headers["X-RateLimit-Daily-Remaining"] == "0"
