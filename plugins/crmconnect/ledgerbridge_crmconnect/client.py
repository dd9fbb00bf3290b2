"""An async client for HighLevel API v2: bearer auth, Version headers, client-side rate limiting, retries.

Retries 429 and 5xx with full-jitter exponential backoff, never sooner than `Retry-After`. Requests that are
not idempotent (sending a message) are retried only when the server cannot have acted on them (429, a
connection that never opened).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
import msgspec

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


class CrmTransportError(Exception):
    """The request could not be completed (connection refused, timeout) after retries."""


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
    return CrmApiError(response.status_code, message, error=label, retry_after=retry_after_seconds(response))


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class TokenSource(Protocol):
    """Where the bearer comes from: a static Private Integration Token or a refreshing OAuth grant."""

    async def token(self) -> str: ...

    async def refreshed(self, rejected: str) -> str | None:
        """A new token after `rejected` got a 401, or None when there is no way to get one."""
        ...


class StaticToken:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def refreshed(self, rejected: str) -> str | None:
        return None


class RateLimiter:
    """Keeps to HighLevel's burst limit: `X-RateLimit-Max` requests per `X-RateLimit-Interval-Milliseconds`.

    The server counts a fixed window that opens with the first request after the previous one closed. The
    answer to that first request says `X-RateLimit-Remaining: max-1`, so the window closes no later than
    `interval` after that answer arrived: the limiter sends at most `max` requests until then. Without such
    an answer (no headers, a quota shared with others) a full window waits `interval·(1+margin)`.
    """

    def __init__(
        self,
        max_requests: int = 100,
        interval: float = 10.0,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.max_requests = max_requests
        self.interval = interval
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._used = 0
        self._closes_at: float | None = None
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self._clock()
                if self._blocked_until > now:
                    await self._sleep(self._blocked_until - now)
                    continue
                if self._closes_at is not None and now >= self._closes_at:
                    self._used, self._closes_at = 0, None
                if self._used < self.max_requests:
                    self._used += 1
                    return
                if self._closes_at is None:
                    self._closes_at = now + self.interval * (1 + self.margin)
                await self._sleep(self._closes_at - now)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the server's limits and the start of its window."""
        try:
            maximum = int(headers.get("x-ratelimit-max", self.max_requests))
            interval_ms = float(headers.get("x-ratelimit-interval-milliseconds", self.interval * 1000))
            remaining = int(headers["x-ratelimit-remaining"]) if "x-ratelimit-remaining" in headers else None
        except ValueError:
            return
        if maximum > 0:
            self.max_requests = maximum
        if interval_ms > 0:
            self.interval = interval_ms / 1000
        if remaining is None:
            return
        now = self._clock()
        if remaining == self.max_requests - 1:
            # the first request of a server window: it opened before now, so it closes before now + interval
            self._closes_at = now + self.interval
        elif remaining == 0 and self._used < self.max_requests:
            self._used = self.max_requests  # someone else shares this quota
            if self._closes_at is None:
                self._closes_at = now + self.interval

    def block(self, seconds: float) -> None:
        """The server refused (429): nothing more until `Retry-After` has passed, then a fresh window."""
        until = self._clock() + seconds
        self._blocked_until = max(self._blocked_until, until)
        self._used, self._closes_at = self.max_requests, until


class Backoff:
    """Full jitter: a random wait in [0, min(cap, base·2^attempt)], at least `Retry-After`."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        jitter = self._rng.uniform(0, min(self.cap, self.base * 2**attempt))
        return max(jitter, retry_after or 0.0)


class CrmClient:
    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        http: httpx.AsyncClient | None = None,
        limiter: RateLimiter | None = None,
        backoff: Backoff | None = None,
        max_retries: int = 5,
        timeout: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self.limiter = limiter or RateLimiter()
        self.backoff = backoff or Backoff()
        self.max_retries = max_retries
        self._sleep = sleep
        self.requests_sent = 0

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
        """The raw body of a 2xx answer; raises `CrmApiError` or `CrmTransportError` once retries are spent."""
        if idempotent is None:
            idempotent = method in ("GET", "PUT", "DELETE")
        token = await self.tokens.token()
        refreshed = False
        attempt = 0
        while True:
            await self.limiter.acquire()
            headers = {"Authorization": f"Bearer {token}", "Version": version, "Accept": "application/json"}
            self.requests_sent += 1
            try:
                response = await self._http.request(
                    method, self.base_url + path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                # A connect failure means nothing reached the server, so even a non-idempotent call may retry.
                if attempt >= self.max_retries or not (idempotent or isinstance(exc, httpx.ConnectError)):
                    raise CrmTransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
                await self._sleep(self.backoff.delay(attempt))
                attempt += 1
                continue
            self.limiter.observe(response.headers)
            if response.is_success:
                return response.content
            error = error_from_response(response)
            if response.status_code == 401 and not refreshed:
                new_token = await self.tokens.refreshed(token)
                refreshed = True
                if new_token is not None:
                    token = new_token
                    continue
            if response.status_code == 429 and error.retry_after is not None:
                self.limiter.block(error.retry_after)
            may_retry = error.retryable and (idempotent or response.status_code == 429)
            if not may_retry or attempt >= self.max_retries:
                raise error
            await self._sleep(self.backoff.delay(attempt, error.retry_after))
            attempt += 1

    async def get(self, path: str, decoder: msgspec.json.Decoder[Any], **kwargs: Any) -> Any:
        return decoder.decode(await self.request("GET", path, **kwargs))

    async def post(self, path: str, decoder: msgspec.json.Decoder[Any], **kwargs: Any) -> Any:
        return decoder.decode(await self.request("POST", path, **kwargs))
