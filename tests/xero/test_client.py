"""The Accounting API client over httpx.MockTransport: Idempotency-Key on writes, Retry-After, limits,
one refresh on 401, Xero's validation errors; and the token store: encrypted, one refresh, rotation saved."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import stamina
from ledgerbridge import PermanentFailure, ReauthorizationRequired, RetryLater
from ledgerbridge.testing.harness import PluginHarness
from ledgerbridge.vendor import LocalLimiter, RetryPolicy
from ledgerbridge_xero import errors
from ledgerbridge_xero.client import XeroClient, idempotency_key
from ledgerbridge_xero.identity import IdentityClient
from ledgerbridge_xero.limiter import tenant_limiter
from ledgerbridge_xero.plugin import XeroPlugin
from ledgerbridge_xero.settings import Credentials, Limits, sandbox_endpoints
from ledgerbridge_xero.tokens import Connection, TokenManager, load_connection, save_connection

FAST = Limits(time_scale=1000, backoff_base=0.001, backoff_cap=0.002, max_attempts=4)
FOUR_ATTEMPTS = RetryPolicy(attempts=4, wait_initial=0.001, wait_max=0.002, longest_wait=10.0, time_scale=1000)


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # the client's own attempt count, no sleeping
        yield


CONTACTS = b'{"Contacts":[{"ContactID":"c-1","Name":"Ada"}]}'


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


def make(handler: Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]], limits: Limits = FAST,
         tokens: Tokens | None = None) -> XeroClient:  # fmt: skip
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # type: ignore[arg-type]
    return XeroClient(http, "https://api.xero.test/api.xro/2.0", "tenant-1", tokens or Tokens(),  # type: ignore[arg-type]
                      tenant_limiter(limits), limits, policy=FOUR_ATTEMPTS)  # fmt: skip


async def test_a_write_retried_after_429_5xx_and_a_dropped_connection_keeps_its_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    answers = [httpx.Response(429, headers={"Retry-After": "2", "X-Rate-Limit-Problem": "minute"}),
               httpx.Response(503), None, httpx.Response(200, content=CONTACTS, headers={"X-DayLimit-Remaining": "4321"})]  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[len(seen) - 1]
        if answer is None:
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        return answer

    client = make(handler)
    await client.put("/Contacts", {"Contacts": [{"Name": "Ada"}]}, key="delivery-7:contact:0")
    assert {r.headers["Idempotency-Key"] for r in seen} == {"delivery-7:contact:0"}
    assert {r.headers["xero-tenant-id"] for r in seen} == {"tenant-1"}
    limiter = client.limiter
    assert isinstance(limiter, LocalLimiter) and limiter.waits == [2.0]
    assert limiter.budget is not None and limiter.budget.daily_remaining == 4321
    assert client.calls == 4 and client.vendor.waits[0] == pytest.approx(2.0 / 1000)  # scaled sandbox time


async def test_a_long_retry_after_hands_the_delivery_back_to_the_pipeline() -> None:
    client = make(lambda r: httpx.Response(429, headers={"Retry-After": "3600", "X-Rate-Limit-Problem": "daily"}))
    with pytest.raises(RetryLater) as raised:
        await client.get("/Contacts")
    assert raised.value.retry_after == 3600 and isinstance(raised.value, errors.RateLimitedError)
    assert client.calls == 1  # no worker waits out Xero's day


async def test_401_refreshes_once_then_asks_for_reconnection() -> None:
    tokens = Tokens()
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["Authorization"])
        return (
            httpx.Response(200, content=CONTACTS)
            if request.headers["Authorization"] == "Bearer new"
            else httpx.Response(401)
        )

    await make(handler, tokens=tokens).get("/Contacts")
    assert calls == ["Bearer old", "Bearer new"] and tokens.refreshes == 1
    with pytest.raises(ReauthorizationRequired):
        await make(lambda r: httpx.Response(401)).get("/Contacts")


async def test_a_validation_exception_is_a_permanent_failure_with_xeros_messages() -> None:
    body = {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
            "Elements": [{"Name": "Ada", "ValidationErrors": [{"Message": "The contact name Ada is already assigned to another contact."}]}]}  # fmt: skip
    with pytest.raises(PermanentFailure) as raised:
        await make(lambda r: httpx.Response(400, json=body)).put("/Contacts", {"Contacts": []}, key="k")
    assert isinstance(raised.value, errors.ValidationError) and raised.value.mentions("already assigned")


async def test_never_more_than_five_calls_in_flight_per_tenant() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return httpx.Response(200, content=CONTACTS)

    client = make(handler)
    await asyncio.gather(*(client.get("/Contacts") for _ in range(12)))
    assert peak == 5


def test_long_idempotency_keys_keep_their_unique_tail() -> None:
    key = idempotency_key("x" * 200, "create")
    assert len(key) == 128 and key.endswith(":create")


# the token store


def _connection(access: str = "a-0", refresh: str = "r-0", expires: float = 0.0) -> Connection:
    return Connection(tenant_id="tenant-1", tenant_name="Demo", connection_id="conn-1", access_token=access,
                      refresh_token=refresh, access_expires_at=expires, connected_at=0.0)  # fmt: skip


async def test_concurrent_refreshes_call_xero_once_and_store_the_rotated_token_encrypted(tmp_path: Path) -> None:
    calls: list[bytes] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.content)
        await asyncio.sleep(0.02)
        return httpx.Response(
            200, json={"access_token": "a-1", "refresh_token": "r-1-rotated-secret", "expires_in": 1800}
        )

    credentials = Credentials("id", "secret", "key", sandbox_endpoints("https://xero.test"))
    manager = TokenManager(IdentityClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), credentials))
    async with PluginHarness({"xero": XeroPlugin}, data_dir=tmp_path) as harness:
        ctx = await harness.account("acme")
        await save_connection(ctx, _connection())
        tokens = await asyncio.gather(*(manager.access_token(ctx) for _ in range(5)))
        assert set(tokens) == {"a-1"} and len(calls) == 1
        assert b"refresh_token=r-0" in calls[0]
        stored = await load_connection(ctx)
        assert stored is not None and stored.refresh_token == "r-1-rotated-secret"
    database = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"r-1-rotated-secret" not in database  # encrypted at rest


async def test_a_refused_refresh_token_pauses_for_reconnection_unless_someone_reconnected(tmp_path: Path) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_grant"})

    credentials = Credentials("id", "secret", "key", sandbox_endpoints("https://xero.test"))
    manager = TokenManager(IdentityClient(httpx.AsyncClient(transport=httpx.MockTransport(handler)), credentials))
    async with PluginHarness({"xero": XeroPlugin}, data_dir=tmp_path) as harness:
        ctx = await harness.account("acme")
        await save_connection(ctx, _connection())
        with pytest.raises(ReauthorizationRequired):
            await manager.access_token(ctx)
