"""The vendor-client kit (ledgerbridge.vendor) against httpx.MockTransport: what a plugin's client does with
each kind of answer, how long it waits on its own, when it hands a delivery back to the durable queue, the
single-flight token refresh, and the limiter. Waits pass on fake clocks or in stamina's test mode: no test
sleeps for real."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest
import stamina
from ledgerbridge import AccountContext, PermanentFailure, ReauthorizationRequired, RetryLater
from ledgerbridge.testing.harness import PluginHarness
from ledgerbridge.vendor import (
    Budget,
    GrantRefused,
    Limiters,
    LocalLimiter,
    RetryPolicy,
    SecretGrant,
    StaticToken,
    TokenManager,
    TokenRejected,
    VendorClient,
    VendorRules,
    parse_retry_after,
)

URL = "https://api.vendor.test/v1/things"


@pytest.fixture(autouse=True)
def no_real_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):  # each policy's own attempt count, no sleeping
        yield


# a vendor's typed errors, as a plugin would declare them


class Refused(PermanentFailure):
    pass


class Busy(RetryLater):
    pass


class BadToken(ReauthorizationRequired, TokenRejected):
    pass


class Unreachable(RetryLater):
    pass


def classify(response: httpx.Response) -> Exception | None:
    if response.is_success:
        return None
    if response.status_code == 401:
        return BadToken("token refused")
    if response.status_code == 429 or response.status_code >= 500:
        return Busy(
            f"busy ({response.status_code})", retry_after=parse_retry_after(response.headers.get("retry-after"))
        )
    return Refused(f"refused ({response.status_code})")


def unreachable(error: httpx.TransportError, method: str, url: str) -> Exception:
    return Unreachable(f"{method} {url}: {error!r}")


def budget(headers: httpx.Headers) -> Budget | None:
    remaining = headers.get("x-remaining")
    return Budget(remaining=int(remaining), resets_in=1.0) if remaining is not None else None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Rotating:
    """A token source whose refresh hands out `new`, counting refreshes."""

    def __init__(self) -> None:
        self.token = "old"
        self.refreshes = 0

    async def access_token(self) -> str:
        return self.token

    async def refresh(self, rejected: str) -> str | None:
        self.refreshes += 1
        self.token = "new"
        return self.token


def client(
    answers: list[httpx.Response | Exception] | Callable[[httpx.Request], httpx.Response],
    *,
    policy: RetryPolicy | None = None,
    tokens: Rotating | StaticToken | None = None,
    limiter: LocalLimiter | None = None,
) -> tuple[VendorClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if callable(answers):
            return answers(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = Clock()
    vendor = VendorClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        tokens or StaticToken("tok"),
        limiter or LocalLimiter(100, 1.0, 4, clock=lambda: clock.now, sleep=clock.sleep),
        VendorRules(name="test-vendor", classify=classify, transport_error=unreachable, budget=budget),
        policy=policy or RetryPolicy(attempts=3, wait_initial=0.2, wait_max=2.0, longest_wait=5.0),
    )
    return vendor, seen


def dropped() -> Exception:
    return httpx.RemoteProtocolError("connection dropped")


# Retry-After


def test_retry_after_reads_seconds_and_http_dates_and_ignores_junk() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    when = email.utils.formatdate(1_000_030.0, usegmt=True)
    assert parse_retry_after(when, now=lambda: 1_000_000.0) == pytest.approx(30.0)
    assert parse_retry_after(when, now=lambda: 2_000_000.0) == 0.0  # a date in the past: now
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("") is None


# short retries, long waits to the queue


async def test_a_dropped_connection_and_a_503_are_resent_and_the_answer_returned() -> None:
    vendor, seen = client([dropped(), httpx.Response(503), httpx.Response(200, json={"ok": 1})])
    response = await vendor.send("GET", URL)
    assert response.json() == {"ok": 1} and vendor.calls == 3 and len(seen) == 3
    assert len(vendor.waits) == 2 and all(0 <= wait <= 0.4 for wait in vendor.waits)  # quick backoff steps
    assert all(r.headers["Authorization"] == "Bearer tok" for r in seen)


async def test_every_answered_call_is_counted_in_metrics_under_the_vendors_name() -> None:
    from prometheus_client import REGISTRY

    def answered(status: str) -> float:
        labels = {"vendor": "test-vendor", "status": status}
        return REGISTRY.get_sample_value("ledgerbridge_vendor_requests_total", labels) or 0.0

    before = answered("503"), answered("200")
    vendor, _ = client([httpx.Response(503), httpx.Response(200, json={"ok": 1})])
    await vendor.send("GET", URL)
    assert (answered("503"), answered("200")) == (before[0] + 1, before[1] + 1)


async def test_an_outage_is_handed_back_as_the_vendors_retry_later_after_a_few_quick_attempts() -> None:
    vendor, seen = client([httpx.Response(502)])
    with pytest.raises(Busy) as raised:
        await vendor.send("GET", URL)
    assert len(seen) == 3 and len(vendor.waits) == 2 and raised.value.retry_after is None


async def test_a_429_with_a_short_retry_after_waits_at_least_that_long_then_resends() -> None:
    vendor, seen = client([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200)])
    await vendor.send("GET", URL)
    assert len(seen) == 2 and vendor.waits == [3.0]


async def test_a_429_with_a_far_retry_after_raises_at_once_and_holds_the_key_without_holding_a_worker() -> None:
    clock = Clock()
    limiter = LocalLimiter(100, 1.0, 4, clock=lambda: clock.now, sleep=clock.sleep)
    vendor, seen = client([httpx.Response(429, headers={"Retry-After": "120"}), httpx.Response(200)], limiter=limiter)
    with pytest.raises(Busy) as raised:
        await vendor.send("GET", URL)
    assert raised.value.retry_after == 120.0 and len(seen) == 1 and vendor.waits == []
    with pytest.raises(RetryLater) as held:  # the next request is not sent: it goes back to the queue too
        await vendor.send("GET", URL)
    assert len(seen) == 1 and held.value.retry_after == pytest.approx(120.0) and clock.slept == []
    clock.now += 121
    await vendor.send("GET", URL)  # the hold is over
    assert len(seen) == 2


async def test_a_held_key_raises_the_vendors_own_retry_later_error_and_sends_nothing() -> None:
    seen: list[httpx.Request] = []
    limiter = LocalLimiter(100, 1.0, 4)
    limiter.hold(60.0)
    rules = VendorRules(
        "test-vendor", classify, unreachable, held=lambda hold: Busy(f"held: {hold}", retry_after=hold.retry_after)
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200)))
    vendor = VendorClient(http, StaticToken("tok"), limiter, rules)
    with pytest.raises(Busy) as raised:
        await vendor.send("GET", URL)
    assert raised.value.retry_after == pytest.approx(60.0, abs=1.0) and seen == [] and vendor.calls == 0


async def test_a_time_scaled_sandbox_shrinks_the_vendors_waits() -> None:
    vendor, _ = client(
        [httpx.Response(429, headers={"Retry-After": "4"}), httpx.Response(200)],
        policy=RetryPolicy(time_scale=100.0, wait_initial=0.01),  # jitter below the vendor's wait
    )
    await vendor.send("GET", URL)
    assert vendor.waits == [pytest.approx(0.04)]


async def test_a_refusal_is_final_and_not_resent() -> None:
    vendor, seen = client([httpx.Response(400)])
    with pytest.raises(Refused):
        await vendor.send("POST", URL, json={}, repeatable=True)
    assert len(seen) == 1


async def test_a_write_the_vendor_may_have_performed_is_resent_only_when_repeatable() -> None:
    for answer in (httpx.Response(500), httpx.ReadTimeout("slow"), dropped()):
        vendor, seen = client([answer, httpx.Response(200)])
        with pytest.raises(RetryLater):
            await vendor.send("POST", URL, json={"amount": 1})  # no idempotency key: not repeatable
        assert len(seen) == 1, answer
        vendor, seen = client([answer, httpx.Response(200)])
        await vendor.send("POST", URL, json={"amount": 1}, repeatable=True)  # an idempotency key
        assert len(seen) == 2, answer


async def test_a_write_that_cannot_have_been_performed_is_resent_anyway() -> None:
    for answer in (httpx.Response(429, headers={"Retry-After": "1"}), httpx.ConnectError("refused")):
        vendor, seen = client([answer, httpx.Response(201)])
        assert (await vendor.send("POST", URL, json={})).status_code == 201
        assert len(seen) == 2, answer


# tokens


async def test_a_401_refreshes_once_and_resends_with_the_new_token() -> None:
    tokens = Rotating()
    vendor, seen = client(
        lambda r: httpx.Response(200 if r.headers["Authorization"] == "Bearer new" else 401), tokens=tokens
    )
    await vendor.send("GET", URL)
    assert [r.headers["Authorization"] for r in seen] == ["Bearer old", "Bearer new"] and tokens.refreshes == 1


async def test_a_second_401_or_a_token_that_cannot_be_refreshed_asks_for_reconnection() -> None:
    tokens = Rotating()
    vendor, seen = client([httpx.Response(401)], tokens=tokens)
    with pytest.raises(ReauthorizationRequired):
        await vendor.send("GET", URL)
    assert len(seen) == 2 and tokens.refreshes == 1
    vendor, seen = client([httpx.Response(401)], tokens=StaticToken("static"))
    with pytest.raises(BadToken):
        await vendor.send("GET", URL)
    assert len(seen) == 1


class Grant(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    access_expires_at: float


class VendorGrants(SecretGrant[Grant]):
    """A plugin's grant store for the tests: ctx secrets, and a token endpoint that rotates the pair."""

    def __init__(self, refused: bool = False) -> None:
        super().__init__("grant", Grant)
        self.renewals = 0
        self.refused_tokens = refused

    async def renew(self, ctx: AccountContext, grant: Grant) -> Grant:
        self.renewals += 1
        await asyncio.sleep(0.02)  # the token endpoint takes a moment: others arrive meanwhile
        if self.refused_tokens:
            raise GrantRefused("invalid_grant")
        n = int(grant.refresh_token.split("-")[1]) + 1
        return Grant(access_token=f"a-{n}", refresh_token=f"r-{n}", access_expires_at=ctx.now() + 3600)

    def missing(self, ctx: AccountContext) -> Exception:
        return ReauthorizationRequired("not connected")

    async def refused(self, ctx: AccountContext, error: GrantRefused) -> Exception:
        await ctx.log("the vendor refused the refresh token", level="error")
        return ReauthorizationRequired("reconnect")


class Books:
    role = "accounting"


async def test_concurrent_expiries_in_two_replicas_refresh_once_and_store_the_rotated_token(tmp_path: Path) -> None:
    grants = VendorGrants()
    replicas = [TokenManager(grants), TokenManager(grants)]  # two servers sharing one store
    async with PluginHarness({"books": Books()}, data_dir=tmp_path) as harness:
        ctx = await harness.account("acme")
        await grants.save(ctx, Grant(access_token="a-0", refresh_token="r-0", access_expires_at=0.0))
        tokens = await asyncio.gather(*(replicas[n % 2].access_token(ctx) for n in range(10)))
        assert set(tokens) == {"a-1"} and grants.renewals == 1
        stored = await grants.load(ctx)
        assert stored is not None and stored.refresh_token == "r-1"
        # a 401 on the token just refreshed by another task does not refresh again
        assert await replicas[1].refresh(ctx, "a-0") == "a-1" and grants.renewals == 1
        assert await replicas[0].refresh(ctx, "a-1") == "a-2" and grants.renewals == 2


async def test_a_refused_refresh_token_asks_for_reconnection_unless_the_user_reconnected(tmp_path: Path) -> None:
    grants = VendorGrants(refused=True)
    manager = TokenManager(grants)
    async with PluginHarness({"books": Books()}, data_dir=tmp_path) as harness:
        ctx = await harness.account("acme")
        with pytest.raises(ReauthorizationRequired):
            await manager.access_token(ctx)  # never connected
        await grants.save(ctx, Grant(access_token="a-0", refresh_token="r-0", access_expires_at=0.0))
        with pytest.raises(ReauthorizationRequired, match="reconnect"):
            await manager.access_token(ctx)

        async def reconnect_meanwhile() -> None:
            await asyncio.sleep(0.005)
            await grants.save(ctx, Grant(access_token="fresh", refresh_token="r-new", access_expires_at=1e12))

        token, _ = await asyncio.gather(manager.refresh(ctx, "a-0"), reconnect_meanwhile())
        assert token == "fresh"


# the limiter


async def test_the_limiter_caps_requests_in_flight() -> None:
    in_flight = peak = 0
    limiter = LocalLimiter(1000, 1.0, 3)

    async def call() -> None:
        nonlocal in_flight, peak
        async with limiter.slot():
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            in_flight -= 1

    await asyncio.gather(*(call() for _ in range(10)))
    assert peak == 3


async def test_the_limiter_waits_for_the_window_when_the_vendor_says_the_budget_is_spent() -> None:
    clock = Clock()
    limiter = LocalLimiter(100, 10.0, 4, reserve=1, clock=lambda: clock.now, sleep=clock.sleep)
    vendor, _ = client(lambda r: httpx.Response(200, headers={"x-remaining": "1"}), limiter=limiter)
    await vendor.send("GET", URL)
    assert clock.slept == []
    await vendor.send("GET", URL)  # one left (someone else shares the budget): wait for the reset it announced
    assert clock.slept == [1.0] and limiter.budget == Budget(remaining=1, resets_in=1.0)


async def test_the_limiter_adopts_the_vendors_own_limit() -> None:
    limiter = LocalLimiter(100, 10.0, 4)
    limiter.observe(Budget(remaining=40, limit=50, window=2.0))
    assert (limiter.rate, limiter.window) == (50, 2.0)


def test_each_key_has_its_own_limiter() -> None:
    made: list[LocalLimiter] = []

    def make(key: str) -> LocalLimiter:
        made.append(LocalLimiter(10, 1.0, 2))
        return made[-1]

    limiters = Limiters(make)
    assert limiters.for_realm("a") is limiters.for_realm("a") is made[0]
    assert limiters.for_realm("b") is made[1] and len(made) == 2
