"""Per-realm client-side limiter: at most N requests per (scaled) minute and M in flight, as Intuit enforces."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

# Our stamp is taken before the request leaves, Intuit's when it arrives: keep a little slack at the edge.
WINDOW_SLACK = 1.02


class RealmLimiter:
    def __init__(
        self,
        requests_per_window: int,
        max_in_flight: int,
        window_seconds: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requests_per_window = requests_per_window
        self.window = window_seconds * WINDOW_SLACK
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._stamps: deque[float] = deque()
        self._window_lock = asyncio.Lock()
        self._clock = clock

    async def _take_window_slot(self) -> None:
        async with self._window_lock:
            while True:
                now = self._clock()
                while self._stamps and self._stamps[0] <= now - self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.requests_per_window:
                    self._stamps.append(now)
                    return
                await asyncio.sleep(self._stamps[0] + self.window - now)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight slot for the duration of a request, after taking a place in the window."""
        async with self._in_flight:
            await self._take_window_slot()
            yield


class Limiters:
    """One limiter per realm, created on first use."""

    def __init__(self, requests_per_window: int, max_in_flight: int, window_seconds: float) -> None:
        self._args = (requests_per_window, max_in_flight, window_seconds)
        self._by_realm: dict[str, RealmLimiter] = {}

    def for_realm(self, realm_id: str) -> RealmLimiter:
        if realm_id not in self._by_realm:
            per_window, in_flight, window = self._args
            self._by_realm[realm_id] = RealmLimiter(per_window, in_flight, window)
        return self._by_realm[realm_id]
