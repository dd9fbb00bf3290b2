"""The HighLevel client against httpx.MockTransport handlers: retries, Retry-After, error envelopes, limits."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
from ledgerbridge_crmconnect.client import CrmApiError, CrmClient, RateLimiter, StaticToken
from ledgerbridge_crmconnect.wire import transaction_decoder


def client_for(handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float]) -> CrmClient:
    """A client whose waits (its own and its rate limiter's) pass on a fake clock, recorded in `sleeps`."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    return CrmClient("https://crm.test", StaticToken("tok"), http=http, limiter=limiter, sleep=sleep, max_retries=3)


async def test_429_is_retried_no_sooner_than_retry_after() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(429, json={"statusCode": 429, "message": "Too many"}, headers={"Retry-After": "7"})
        return httpx.Response(200, json={"ok": True})

    sleeps: list[float] = []
    client = client_for(handler, sleeps)
    assert await client.request("GET", "/contacts/x") == b'{"ok":true}'
    assert sleeps == [7.0]
    assert seen[0].headers["Version"] == "2021-07-28"
    assert seen[0].headers["Authorization"] == "Bearer tok"


async def test_a_non_idempotent_post_is_not_retried_after_a_500() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500, json={"statusCode": 500, "message": "boom"})

    client = client_for(handler, [])
    with pytest.raises(CrmApiError) as error:
        await client.request("POST", "/conversations/messages", json={}, idempotent=False)
    assert calls == 1 and error.value.status == 500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"statusCode": 422, "message": ["email must be an email", "x"], "error": "Unprocessable Entity"}, "email"),
        ({"status": 404, "message": "Order not found", "name": "HttpException", "traceId": "t"}, "Order not found"),
    ],
)
async def test_both_error_envelopes_are_read(body: dict[str, object], message: str) -> None:
    client = client_for(
        lambda request: httpx.Response(int(str(body.get("statusCode") or body["status"])), json=body), []
    )
    with pytest.raises(CrmApiError) as error:
        await client.request("GET", "/x")
    assert message in error.value.message


async def test_the_limiter_follows_the_rate_limit_headers() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep, margin=0.0)
    limiter.observe({"x-ratelimit-max": "2", "x-ratelimit-interval-milliseconds": "1000", "x-ratelimit-remaining": "2"})
    for _ in range(3):
        await limiter.acquire()
    assert waits == [1.0]


def test_money_decodes_from_numbers_and_numeric_strings() -> None:
    txn = transaction_decoder.decode(b'{"_id": "t", "amount": "99.99", "amountRefunded": 0.1, "unknown": [1]}')
    assert txn.amount == Decimal("99.99") and txn.amountRefunded == Decimal("0.1")
