"""`VendorClient` sends one logical request to a vendor's API and returns its answer or raises a typed error.

Per send: a limiter slot, the bearer from a `TokenSource`, the plugin's classification of the answer (its
own typed errors: a `RetryLater` subclass is retryable, a `TokenRejected` subclass means "refresh the token
and resend once", anything else is final), the vendor's rate-limit headers fed back to the limiter.

Retries are short and done with stamina: a dropped connection, a 5xx, a 429 whose `Retry-After` is at most
`policy.longest_wait`; a few attempts within `policy.timeout`. A longer wait raises the classified
`RetryLater` (with the vendor's `retry_after`) so the delivery goes back to the durable queue instead of
holding a worker. A request the vendor may have performed (a timeout, a 5xx) is repeated only when the caller
says it is `repeatable` (a read, or a write the vendor de-duplicates by an idempotency key); a connection
that never opened and a 429 are repeated anyway, since nothing was done.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import stamina

from ledgerbridge.errors import RetryLater
from ledgerbridge.observability import instrument
from ledgerbridge.vendor.limiter import AdaptiveLimiter, Budget, Held, Limiter
from ledgerbridge.vendor.policy import RetryPolicy
from ledgerbridge.vendor.tokens import TokenSource

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# the connection never opened: the vendor cannot have acted on the request
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TokenRejected(Exception):
    """Mixed into a plugin's error for "this access token was refused" (a 401): refresh once and resend.
    Raised as it is when the refreshed token is refused too, or when there is nothing to refresh."""


class Classifier(Protocol):
    def __call__(self, response: httpx.Response) -> Exception | None:
        """None for success, else the vendor's typed error for this answer."""
        ...


class TransportFailure(Protocol):
    def __call__(self, error: httpx.TransportError, method: str, url: str) -> Exception:
        """The plugin's error (normally a `RetryLater` subclass) for a request that got no answer."""
        ...


def no_budget(headers: httpx.Headers) -> Budget | None:
    return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def held_as_is(held: Held) -> Exception:
    return held


@dataclass(frozen=True)
class VendorRules:
    """What is one vendor's own in every request: how to read its answers, name a lost connection, read its
    rate-limit headers and present the token. A plugin declares it once, at module level."""

    #: labels the vendor's calls in /metrics and the logs
    name: str
    classify: Classifier
    transport_error: TransportFailure
    budget: Callable[[httpx.Headers], Budget | None] = no_budget
    authorization: Callable[[str], dict[str, str]] = bearer
    held: Callable[[Held], Exception] = held_as_is  # the vendor's RetryLater error for a limiter's long hold
    #: the response header in which the vendor documents its own id of each request (logged beside ours)
    response_id_header: str | None = None


class _Failed(Exception):
    """One failed send, as the retry loop sees it."""

    def __init__(self, error: Exception, *, performed: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.performed = performed


class VendorClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        tokens: TokenSource,
        limiter: Limiter,
        rules: VendorRules,
        *,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
    ) -> None:
        self.http = instrument(http, vendor=rules.name, vendor_id_header=rules.response_id_header)
        self.tokens = tokens
        self.limiter = limiter
        self.rules = rules
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.calls = 0  # requests sent, retries included (benchmarks read it)
        self.waits: list[float] = []  # the waits this client chose before resending

    async def send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        repeatable: bool | None = None,
    ) -> httpx.Response:
        """The successful answer; else the classified error, after short retries and at most one refresh."""
        if repeatable is None:
            repeatable = method in SAFE_METHODS
        token = await self.tokens.access_token()
        refreshed = False
        while True:
            try:
                return await self._send_with_retries(method, url, token, params, headers, content, json, repeatable)
            except TokenRejected:
                if refreshed:
                    raise
                refreshed = True
                fresh = await self.tokens.refresh(token)
                if fresh is None:
                    raise
                token = fresh

    async def _send_with_retries(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        json: Any,
        repeatable: bool,
    ) -> httpx.Response:
        policy = self.policy
        backoff = policy.backoff()
        failures = 0

        def wait_before_resending(exc: Exception) -> bool | float:
            nonlocal failures
            failures += 1
            if not isinstance(exc, _Failed) or failures >= policy.attempts:
                return False
            error = exc.error
            if not isinstance(error, RetryLater) or (exc.performed and not repeatable):
                return False
            asked = error.retry_after
            if asked is not None and asked > policy.longest_wait:
                return False  # a long wait belongs to the durable queue, not to a worker
            wait = backoff.delay(failures, None if asked is None else policy.vendor_wait(asked))
            self.waits.append(wait)
            return wait

        try:
            async for attempt in stamina.retry_context(
                on=wait_before_resending,
                attempts=policy.attempts,
                timeout=policy.timeout,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
            ):
                with attempt:
                    return await self._send_once(method, url, token, params, headers, content, json)
        except _Failed as failed:
            raise failed.error from failed.error.__cause__
        raise AssertionError("stamina ended without an answer or an error")  # pragma: no cover

    async def _send_once(
        self,
        method: str,
        url: str,
        token: str,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
        content: bytes | None,
        json: Any,
    ) -> httpx.Response:
        all_headers = {**self.rules.authorization(token), **(headers or {})}
        extra: dict[str, Any] = {} if self.timeout is None else {"timeout": self.timeout}
        try:
            async with self.limiter.slot():
                self.calls += 1
                response = await self.http.request(
                    method, url, params=params, headers=all_headers, content=content, json=json, **extra
                )
        except Held as held:  # sent nothing: the vendor asked for a long pause, the delivery goes back
            raise self.rules.held(held) from held
        except httpx.TransportError as exc:
            error = self.rules.transport_error(exc, method, url)
            error.__cause__ = exc
            raise _Failed(error, performed=not isinstance(exc, NOT_SENT)) from exc
        adaptive = self.limiter if isinstance(self.limiter, AdaptiveLimiter) else None
        budget = self.rules.budget(response.headers)
        if adaptive is not None and budget is not None:
            adaptive.observe(budget)
        failure = self.rules.classify(response)
        if failure is None:
            return response
        asked = failure.retry_after if isinstance(failure, RetryLater) else None
        if response.status_code == 429 and adaptive is not None and asked is not None:
            adaptive.hold(asked)  # the location / realm / tenant sends nothing until then
        raise _Failed(failure, performed=response.status_code != 429)


class VendorApi:
    """Base of a plugin's API client: its `VendorClient`, and the counters benchmarks and cards read."""

    vendor: VendorClient

    @property
    def calls(self) -> int:
        """Requests sent, retries included."""
        return self.vendor.calls

    @property
    def limiter(self) -> Limiter:
        return self.vendor.limiter
