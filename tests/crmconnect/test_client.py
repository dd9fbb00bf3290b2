"""The HighLevel client against httpx.MockTransport handlers: retries, Retry-After, error envelopes, limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest
import stamina
from ledgerbridge import RetryLater
from ledgerbridge_crmconnect.client import CrmApiError, CrmClient, RateLimiter, StaticToken
from ledgerbridge_crmconnect.wire import transaction_decoder


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # the client's own attempt count, no sleeping
        yield


def client_for(handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float]) -> CrmClient:
    """A client whose rate limiter's waits pass on a fake clock, recorded in `sleeps`."""
    now = [0.0]

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    return CrmClient("https://crm.test", StaticToken("tok"), http=http, limiter=limiter, max_retries=3)


async def test_a_429_with_a_short_retry_after_is_retried_no_sooner() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(429, json={"statusCode": 429, "message": "Too many"}, headers={"Retry-After": "2"})
        return httpx.Response(200, json={"ok": True})

    sleeps: list[float] = []
    client = client_for(handler, sleeps)
    assert await client.request("GET", "/contacts/x") == b'{"ok":true}'
    assert client.vendor.waits == [2.0] and sleeps == [2.0]  # the client's backoff, then the location's hold
    assert seen[0].headers["Version"] == "2021-07-28"
    assert seen[0].headers["Authorization"] == "Bearer tok"


async def test_a_429_with_a_far_retry_after_goes_back_to_the_queue_without_waiting() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"statusCode": 429, "message": "Too many"}, headers={"Retry-After": "60"})

    sleeps: list[float] = []
    client = client_for(handler, sleeps)
    with pytest.raises(RetryLater) as raised:
        await client.request("GET", "/contacts/x")
    assert isinstance(raised.value, CrmApiError) and raised.value.retry_after == 60.0
    assert client.requests_sent == 1 and sleeps == [] and client.vendor.waits == []
    with pytest.raises(CrmApiError) as held:  # the location is held: nothing is sent until the minute has passed
        await client.request("GET", "/contacts/y")
    assert isinstance(held.value, RetryLater) and held.value.retry_after == pytest.approx(60.0)
    assert client.requests_sent == 1


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

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"X-RateLimit-Max": "50", "X-RateLimit-Interval-Milliseconds": "1000",
                   "X-RateLimit-Remaining": "0", "X-RateLimit-Daily-Remaining": "199000"}  # fmt: skip
        return httpx.Response(200, json={}, headers=headers)

    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = CrmClient("https://crm.test", StaticToken("tok"), http=http, limiter=limiter)
    await client.request("GET", "/contacts/x")
    assert (limiter.rate, limiter.window) == (50, 1.0)  # the server's limit, not the default 100 per 10 s
    await client.request("GET", "/contacts/x")  # someone else spent the window: wait for it to close
    assert waits == [1.0]


def test_money_decodes_from_numbers_and_numeric_strings() -> None:
    txn = transaction_decoder.decode(b'{"_id": "t", "amount": "99.99", "amountRefunded": 0.1, "unknown": [1]}')
    assert txn.amount == Decimal("99.99") and txn.amountRefunded == Decimal("0.1")
