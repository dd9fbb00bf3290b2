"""The Accounting API client over httpx.MockTransport: retries, requestid, faults, 401 refresh."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import httpx
import pytest
import stamina
from ledgerbridge import RetryLater
from ledgerbridge.vendor import LocalLimiter, RetryPolicy
from ledgerbridge_quickbooks import errors, wire
from ledgerbridge_quickbooks.client import QuickBooksClient, quote_value, request_id
from ledgerbridge_quickbooks.settings import Limits

THROTTLE = (
    b'<?xml version="1.0"?><IntuitResponse xmlns="http://schema.intuit.com/finance/v3"><Fault type="SERVICE">'
    b'<Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>'
    b"<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>"
)
CUSTOMER = b'{"Customer":{"Id":"7","SyncToken":"0","DisplayName":"Ada","LineEx":{"any":[]}},"time":"t"}'


class Middle(random.Random):
    """Jitter that always lands in the middle of its range."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # the client's own attempt count, no sleeping
        yield


class Tokens:
    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    async def access_token(self) -> str:
        return self.token

    async def refresh(self, rejected: str) -> str:
        self.refreshes += 1
        self.token = "new"
        return self.token


def make(
    handler: Callable[[httpx.Request], httpx.Response], tokens: Tokens | None = None
) -> tuple[QuickBooksClient, list[float]]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    policy = RetryPolicy(attempts=4, wait_initial=0.5, rng=Middle())
    client = QuickBooksClient(http, "https://qbo.test", "123", tokens or Tokens(), LocalLimiter(500, 60, 10),
                              Limits(), policy=policy)  # fmt: skip
    return client, client.vendor.waits


async def test_a_write_retried_after_429_5xx_and_a_dropped_connection_keeps_its_requestid() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(429, content=THROTTLE, headers={"content-type": "application/xml", "retry-after": "3"}),
               httpx.Response(503, json={}), None, httpx.Response(200, content=CUSTOMER)]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if answer is None:
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        return answer

    client, slept = make(handler)
    created = await client.create(wire.Customer(DisplayName="Ada"), "lb-1-cust0")
    assert created.Id == "7" and client.calls == 4
    assert {r.url.params["requestid"] for r in seen} == {"lb-1-cust0"}
    assert all(r.url.params["minorversion"] == "75" for r in seen)
    assert slept[0] == 3.0  # a short Retry-After honoured (jitter would be lower)
    assert slept[1] == pytest.approx(0.5 * 1.0)  # full jitter of the second backoff step (ceiling 0.5·2)


async def test_a_far_retry_after_goes_back_to_the_pipeline_at_once_with_the_tid() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, content=THROTTLE, headers={"intuit_tid": "tid-9", "retry-after": "7"})

    client, slept = make(handler)
    with pytest.raises(errors.ThrottledError) as caught:
        await client.read(wire.Customer, "7")
    assert isinstance(caught.value, RetryLater) and client.calls == 1 and slept == []
    assert caught.value.retry_after == 7.0 and caught.value.code == "3001"
    assert caught.value.details == {"status": 429, "code": "3001", "vendor_transaction_id": "tid-9"}


async def test_an_outage_is_tried_a_few_times_then_handed_back_as_retry_later() -> None:
    client, slept = make(lambda request: httpx.Response(503, json={}))
    with pytest.raises(errors.ServerError) as caught:
        await client.read(wire.Customer, "7")
    assert isinstance(caught.value, RetryLater) and client.calls == 4 and len(slept) == 3


async def test_401_refreshes_once_then_retries() -> None:
    tokens = Tokens()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer old":
            return httpx.Response(401, json={"fault": {"error": [{"message": "message=AuthenticationFailed",
                                  "detail": "expired", "code": "3200"}], "type": "AUTHENTICATION"}})  # fmt: skip
        return httpx.Response(200, content=CUSTOMER)

    client, _ = make(handler, tokens)
    assert (await client.read(wire.Customer, "7")).DisplayName == "Ada"
    assert tokens.refreshes == 1


async def test_validation_faults_are_typed_and_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, headers={"intuit_tid": "tid-1"}, json={"Fault": {"Error": [{
            "Message": "Duplicate Name Exists Error", "Detail": "The name supplied already exists. : null",
            "code": "6240"}], "type": "ValidationFault"}, "time": "t"})  # fmt: skip

    client, _ = make(handler)
    with pytest.raises(errors.DuplicateNameError) as caught:
        await client.create(wire.Customer(DisplayName="Ada"), "lb-1-cust0")
    assert calls == 1 and caught.value.intuit_tid == "tid-1" and caught.value.code == "6240"


def test_request_ids_fit_in_50_characters_and_stay_distinct() -> None:
    assert request_id("lb-12", "receipt") == "lb-12-receipt"
    long_a, long_b = request_id("lb-1", "x" * 80), request_id("lb-1", "x" * 79 + "y")
    assert len(long_a) == 50 and len(long_b) == 50 and long_a != long_b


def test_query_literals_escape_quotes() -> None:
    assert quote_value("O'Brien \\ co") == "'O\\'Brien \\\\ co'"
