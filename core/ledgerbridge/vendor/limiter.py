"""Client-side rate limiting: a `Limiter` is anything whose `slot()` is an async context manager held for
the duration of one request. `LocalLimiter` keeps one process within a vendor's limits; `Limiters` hands out
one limiter per key (a realm, a tenant, a location). A store-backed registry with the same `for_realm` shape
lets several replicas share one budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from aiolimiter import AsyncLimiter

from ledgerbridge.errors import RetryLater

# Our stamp is taken when the request leaves, the vendor's when it arrives: keep a little slack at the edge.
WINDOW_SLACK = 1.02


class Held(RetryLater):
    """A limiter's slot is held longer than a worker should wait (the vendor said so): retry later."""


@runtime_checkable
class Limiter(Protocol):
    def slot(self) -> contextlib.AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True)
class Budget:
    """What a vendor's answer said about the caller's remaining budget (its rate-limit headers)."""

    remaining: int | None = None  # calls left in the current window
    resets_in: float | None = None  # seconds until the window is full again (an upper bound is fine)
    limit: int | None = None  # calls the vendor allows per window, when it says
    window: float | None = None  # that window's length in seconds, when it says
    daily_remaining: int | None = None  # calls left today, when the vendor counts days too


@runtime_checkable
class AdaptiveLimiter(Limiter, Protocol):
    def observe(self, budget: Budget) -> None:
        """The vendor's own count after an answer."""

    def hold(self, seconds: float) -> None:
        """The vendor refused for being over its limit: send nothing for the `seconds` it asked."""


class VendorHolds:
    """The vendor's own word on when to send again (a 429's Retry-After, a spent budget), kept per key: new
    slots wait it out, or raise `Held` (back to the durable queue) when it is longer than `longest_hold`."""

    def __init__(
        self,
        *,
        longest_hold: float,
        time_scale: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.longest_hold = longest_hold
        self.time_scale = time_scale  # > 1 for a time-scaled sandbox: a vendor's hold passes that much faster
        self.waits: list[float] = []  # vendor-imposed holds, in seconds (the card and tests read them)
        self._held_until = 0.0
        self._clock = clock
        self._sleep = sleep

    async def _wait_out_holds(self) -> None:
        while (wait := self._held_until - self._clock()) > 0:
            if wait > self.longest_hold:
                # a worker does not sit out a long refusal: the delivery goes back to the durable queue
                raise Held(f"the vendor's rate limit holds requests for {wait:.0f} s", retry_after=wait)
            await self._sleep(wait)

    def hold(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._hold_for(seconds / self.time_scale)

    def _hold_for(self, seconds: float) -> None:
        self._held_until = max(self._held_until, self._clock() + seconds)


class LocalLimiter(VendorHolds):
    """About `rate` requests per `period` seconds and at most `max_in_flight` at once, in this process.

    The rate is aiolimiter's leaky bucket. By default (`burst=rate`) a quiet client may send `rate` at once
    and then `rate` per `period`, so a window that starts idle can see up to twice the rate: right for a
    vendor whose headers say when the budget runs out. With a smaller `burst` the bucket lets `burst` go at
    once and drips `rate - burst` per `period`, so **no** window of `period` seconds ever holds more than
    `rate` (for vendors that count windows and say nothing until they refuse, or whose refusals cost a
    whole window). When the vendor's headers say the budget is down to `reserve`, or a 429 says
    to wait, new slots wait until the window has reset; a hold longer than `longest_hold` raises
    `RetryLater` instead of keeping a worker waiting.
    """

    def __init__(
        self,
        rate: int,
        period: float,
        max_in_flight: int,
        *,
        burst: int | None = None,
        reserve: int = 0,
        longest_hold: float = 5.0,
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate < 1 or period <= 0 or max_in_flight < 1:
            raise ValueError("a limiter needs rate ≥ 1, period > 0 and max_in_flight ≥ 1")
        self._burst = burst
        self._tune(rate, period)
        self._in_flight = asyncio.Semaphore(max_in_flight)
        super().__init__(longest_hold=longest_hold, time_scale=time_scale, clock=clock, sleep=sleep)
        self.reserve = reserve
        self.budget: Budget | None = None  # the vendor's last word

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._in_flight:
            await self._wait_out_holds()
            while True:
                bucket = self._bucket
                await bucket.acquire()
                if bucket is self._bucket:
                    break  # else retuned while waiting: only the current bucket's count keeps the window
            yield

    def _tune(self, rate: int, period: float) -> None:
        retuned = hasattr(self, "_bucket")
        self.rate, self.window = rate, period
        self.period = period * WINDOW_SLACK
        self.burst = min(self._burst, rate) if self._burst is not None else rate
        if self.burst >= rate:
            self._bucket = AsyncLimiter(rate, self.period)
        else:  # `burst` at once, then the rest of the window's budget spread over the window
            self._bucket = AsyncLimiter(self.burst, self.burst * self.period / (rate - self.burst))
        if retuned:
            _spend_burst(self._bucket)

    def observe(self, budget: Budget) -> None:
        self.budget = budget
        if budget.limit and budget.window and (budget.limit, budget.window) != (self.rate, self.window):
            self._tune(budget.limit, budget.window)  # the vendor's own figures win over our defaults
        if budget.remaining is not None and budget.remaining <= self.reserve:
            self._hold_for(budget.resets_in if budget.resets_in is not None else self.period)


def _spend_burst(bucket: AsyncLimiter) -> None:
    """Start a retuned bucket as if its burst had just gone: what the old bucket let through still counts in
    the vendor's current window. (A fresh bucket's `acquire` of its whole capacity completes without waiting.)"""
    taking = bucket.acquire(bucket.max_rate)
    try:
        taking.send(None)
    except StopIteration:
        return
    taking.close()


L = TypeVar("L", bound=Limiter)


class Limiters(Generic[L]):
    """One limiter per key (realm, tenant, location), made on first use by `make(key)`."""

    def __init__(self, make: Callable[[str], L]) -> None:
        self._make = make
        self._by_key: dict[str, L] = {}

    def for_realm(self, key: str) -> L:
        found = self._by_key.get(key)
        if found is None:
            found = self._by_key[key] = self._make(key)
        return found
