"""An async client for HighLevel API v2 on the core's vendor kit: bearer auth, Version headers, HighLevel's two
error envelopes as `CrmApiError`, its rate-limit headers fed to the location's limiter.

Short retries only (a dropped connection, a 5xx, a 429 whose `Retry-After` is a few seconds); a longer wait
raises `CrmRetryableError`, a `RetryLater`, so a delivery goes back to the durable queue. Requests that are not
idempotent (sending a message) are resent only when the server cannot have acted on them (429, a connection
that never opened).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import msgspec
from ledgerbridge import RetryLater
from ledgerbridge.vendor import (
    Budget,
    Held,
    Limiter,
    LocalLimiter,
    RetryPolicy,
    StaticToken,
    TokenRejected,
    TokenSource,
    VendorApi,
    VendorClient,
    VendorRules,
    parse_retry_after,
)

__all__ = [
    "CrmApiError",
    "CrmClient",
    "CrmRetryableError",
    "CrmTokenRejected",
    "CrmTransportError",
    "RateLimiter",
    "StaticToken",
    "TokenSource",
]

VERSION_DEFAULT = "2021-07-28"  # contacts, invoices, payments, products
VERSION_CONVERSATIONS = "2021-04-15"  # conversations, calendars

RETRYABLE = frozenset({429, 500, 502, 503, 504})


class CrmApiError(Exception):
    """An error answer, read from either envelope HighLevel uses:
    `{"statusCode", "message": str | [str], "error"}` or `{"status", "message", "name", "traceId"}`."""

    def __init__(
        self, status: int, message: str, *, error: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.error = error
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE


class CrmRetryableError(CrmApiError, RetryLater):  # type: ignore[misc, unused-ignore]
    """429 or a 5xx: HighLevel may answer later (after `retry_after` when it said so)."""

    def __init__(
        self, status: int, message: str, *, error: str | None = None, retry_after: float | None = None
    ) -> None:
        CrmApiError.__init__(self, status, message, error=error, retry_after=retry_after)


class CrmTokenRejected(CrmApiError, TokenRejected):
    """401: the bearer was refused (refreshed once when it is an OAuth grant)."""


class CrmTransportError(RetryLater):
    """The request could not be completed (connection refused, timeout) after the client's short retries."""


class _ErrorEnvelope(msgspec.Struct):
    statusCode: int | None = None
    status: int | None = None
    message: str | list[str] | None = None
    error: str | None = None
    name: str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)


def error_from_response(response: httpx.Response) -> CrmApiError:
    message: str = response.reason_phrase or "error"
    label: str | None = None
    try:
        envelope = _error_decoder.decode(response.content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        envelope = None
    if envelope is not None:
        if isinstance(envelope.message, list):
            message = "; ".join(str(m) for m in envelope.message)
        elif envelope.message:
            message = envelope.message
        label = envelope.error or envelope.name
    kind = CrmApiError
    if response.status_code == 401:
        kind = CrmTokenRejected
    elif response.status_code in RETRYABLE:
        kind = CrmRetryableError
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    return kind(response.status_code, message, error=label, retry_after=retry_after)


def budget(headers: httpx.Headers) -> Budget | None:
    """HighLevel's burst window (`X-RateLimit-Max` per `X-RateLimit-Interval-Milliseconds`) and daily budget."""
    try:
        remaining = _int(headers.get("x-ratelimit-remaining"))
        maximum = _int(headers.get("x-ratelimit-max"))
        interval_ms = headers.get("x-ratelimit-interval-milliseconds")
        interval = float(interval_ms) / 1000 if interval_ms is not None else None
        daily = _int(headers.get("x-ratelimit-daily-remaining"))
    except ValueError:
        return None
    if remaining is None and maximum is None and daily is None:
        return None
    # the server's window opened at or before this answer: it is full again within one interval
    return Budget(remaining=remaining, resets_in=interval, limit=maximum, window=interval, daily_remaining=daily)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None else None


#: HighLevel's burst limit per location (a daily limit applies too), and how many we send at once
LOCATION_LIMIT, LOCATION_WINDOW_SECONDS, LOCATION_IN_FLIGHT = 100, 10.0, 20
#: the bucket's burst is the limit / BURST_SHARE: 5 of HighLevel's 100 go at once and 95 drip over the window,
#: so the sustained rate is 0.93 of the limit (the kit keeps 2 % slack). With 2 (the limit / 50), an event loop
#: that wakes a waiter late loses the slots it missed (the bucket holds only 2); 5 absorbs that lag. A larger
#: burst lowers the sustained rate (10 would cap it at 0.88). Never a window above the limit.
BURST_SHARE = 20


class RateLimiter(LocalLimiter):
    """One location's budget: `max_requests` per `interval` seconds (100 per 10 s until the headers say
    otherwise). HighLevel counts fixed windows and a refusal costs a window, so the bucket lets a twentieth of the
    limit go at once and drips the rest over the window: no window ever holds more than the limit. If the
    quota is shared and the headers say it is spent, requests wait for the window to close (at most one interval)."""

    def __init__(
        self,
        max_requests: int = LOCATION_LIMIT,
        interval: float = LOCATION_WINDOW_SECONDS,
        *,
        max_in_flight: int = LOCATION_IN_FLIGHT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(
            max_requests,
            interval,
            max_in_flight,
            burst=max(1, max_requests // BURST_SHARE),
            longest_hold=interval * 1.1,
            clock=clock,
            sleep=sleep,
        )

    def _tune(self, rate: int, period: float) -> None:
        self._burst = max(1, rate // BURST_SHARE)
        self.longest_hold = max(getattr(self, "longest_hold", 0.0), period * 1.1)
        super()._tune(rate, period)


def unreachable(error: httpx.TransportError, method: str, url: str) -> Exception:
    return CrmTransportError(f"{method} {httpx.URL(url).path}: {type(error).__name__}: {error}")


class CrmClient(VendorApi):
    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        http: httpx.AsyncClient | None = None,
        limiter: Limiter | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        policy = policy or RetryPolicy(attempts=max_retries + 1)
        self.vendor = VendorClient(self._http, tokens, limiter or RateLimiter(), HIGHLEVEL, policy=policy)

    @property
    def requests_sent(self) -> int:
        """Requests sent, retries included (the benchmark reads it)."""
        return self.calls

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> CrmClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        version: str = VERSION_DEFAULT,
        idempotent: bool | None = None,
    ) -> bytes:
        """The raw body of a 2xx answer; raises `CrmApiError` or `CrmTransportError` otherwise."""
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        response = await self.vendor.send(
            method,
            self.base_url + path,
            params=params,
            json=json,
            headers={"Version": version, "Accept": "application/json"},
            repeatable=idempotent,
        )
        return response.content

    async def get(self, path: str, decoder: msgspec.json.Decoder[Any], **kwargs: Any) -> Any:
        return decoder.decode(await self.request("GET", path, **kwargs))

    async def post(self, path: str, decoder: msgspec.json.Decoder[Any], **kwargs: Any) -> Any:
        return decoder.decode(await self.request("POST", path, **kwargs))


def classify(response: httpx.Response) -> CrmApiError | None:
    return None if response.is_success else error_from_response(response)


def held(hold: Held) -> CrmApiError:
    return CrmRetryableError(429, f"this location is rate limited: {hold}", retry_after=hold.retry_after)


HIGHLEVEL = VendorRules(name="crmconnect", classify=classify, transport_error=unreachable, budget=budget, held=held)
