"""Client-side limits a vendor enforces per company: at most N requests in a sliding window and M in flight.

An accounting API may allow 500 requests a minute and 10 at once per company; a CRM may limit each location.
The vendor kit's `LocalLimiter` keeps the counts in process memory (one server on SQLite); `SharedLimiters`
keeps them in the store, so every replica sharing a PostgreSQL database draws on the same budget: a stamp per
request in a sliding window, and in-flight slots leased with an expiry, so the slot of a replica that dies
frees itself. Both hand out one limiter per key whose `slot()` is held for the duration of a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable

from ledgerbridge.store import Store
from ledgerbridge.vendor.limiter import WINDOW_SLACK, Budget, Limiters, VendorHolds

# A shared stamp is the time its request asked the store, which may be busy a while before admitting it
# (a round trip, and other replicas' requests for the same company ahead in line): more slack, in seconds.
ADMISSION_ALLOWANCE = 0.25


class SharedLimiter(VendorHolds):
    """Counts kept in the store, shared by every process on it.

    A request first takes one of `max_in_flight` slots (rows leased until `slot_ttl_seconds` from now, renewed
    while the request lasts), then counts itself in the window (refused while `requests_per_window` stamps are
    younger than the window; it then sleeps until the oldest leaves). Waiting for a slot polls the store; a
    semaphore of this process's own keeps its waiters to `max_in_flight`. A vendor's hold (a 429's
    Retry-After, a spent budget) is kept by the replica that was told, as `LocalLimiter` keeps it.
    """

    def __init__(
        self,
        store: Store,
        key: str,
        requests_per_window: int,
        window_seconds: float,
        max_in_flight: int,
        *,
        clock: Callable[[], float] = time.time,
        slot_ttl_seconds: float = 30.0,
        poll_seconds: float = 0.05,
        longest_hold: float = 5.0,
        time_scale: float = 1.0,
    ) -> None:
        super().__init__(longest_hold=longest_hold, time_scale=time_scale, clock=time.monotonic, sleep=asyncio.sleep)
        self.store = store
        self.key = key
        self.requests_per_window = requests_per_window
        self.window = window_seconds * WINDOW_SLACK + ADMISSION_ALLOWANCE
        self.max_in_flight = max_in_flight
        self.slot_ttl = slot_ttl_seconds
        self._poll = poll_seconds
        self._clock = clock
        self._local = asyncio.Semaphore(max_in_flight)
        self._freed = asyncio.Event()

    async def _take_slot(self, holder: str) -> None:
        pause = self._poll / 8
        while not await self.store.take_slot(self.key, holder, self.max_in_flight, self.slot_ttl, self._clock()):
            self._freed.clear()
            # a slot freed in this process wakes its waiters at once; one freed by another replica shows at
            # the next poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, self._poll)

    async def _take_place(self) -> None:
        while True:
            free_at = await self.store.count_request(self.key, self.requests_per_window, self.window, self._clock())
            if free_at is None:
                return
            await asyncio.sleep(max(free_at - self._clock(), 0.001) + random.uniform(0, self._poll / 5))

    async def _renew(self, holder: str) -> None:
        while True:
            await asyncio.sleep(self.slot_ttl / 3)
            await self.store.renew_slot(self.key, holder, self.slot_ttl, self._clock())

    def observe(self, budget: Budget) -> None:
        if budget.remaining is not None and budget.remaining <= 0:
            self._hold_for(budget.resets_in if budget.resets_in is not None else self.window)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._local:
            await self._wait_out_holds()
            holder = uuid.uuid4().hex
            await self._take_slot(holder)
            renewer = asyncio.create_task(self._renew(holder), name=f"rate-slot:{self.key}")
            try:
                await self._take_place()
                yield
            finally:
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
                await self.store.free_slot(self.key, holder)  # if this fails, the slot's lease runs out
                self._freed.set()


class SharedLimiters(Limiters[SharedLimiter]):
    """One `SharedLimiter` per key; `name` keeps families apart in the store ("books:realm", say)."""

    def __init__(
        self,
        store: Store,
        requests_per_window: int,
        window_seconds: float,
        max_in_flight: int,
        *,
        name: str = "",
        clock: Callable[[], float] = time.time,
        slot_ttl_seconds: float = 30.0,
        poll_seconds: float = 0.05,
        longest_hold: float = 5.0,
        time_scale: float = 1.0,
    ) -> None:
        self.name = name

        def make(key: str) -> SharedLimiter:
            return SharedLimiter(
                store,
                f"{name}:{key}" if name else key,
                requests_per_window,
                window_seconds,
                max_in_flight,
                clock=clock,
                slot_ttl_seconds=slot_ttl_seconds,
                poll_seconds=poll_seconds,
                longest_hold=longest_hold,
                time_scale=time_scale,
            )

        super().__init__(make)
