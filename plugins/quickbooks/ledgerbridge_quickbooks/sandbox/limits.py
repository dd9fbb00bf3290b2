"""Intuit's throttles (requests per minute, in-flight, batches per minute) and injected faults, per realm."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from .clock import Clock


@dataclass
class Limits:
    requests_per_minute: int = 500
    max_in_flight: int = 10
    batches_per_minute: int = 120
    # Intuit's 429 carries no Retry-After as far as captures show; a test may ask for one.
    retry_after: int | None = None


@dataclass
class Observed:
    """What one company's clients did, admitted or refused: counters for tests of client-side limiting."""

    open: int = 0  # requests arrived and not yet answered
    peak_in_flight: int = 0  # the most requests open at once
    peak_per_minute: int = 0  # the most arrivals in one sliding (scaled) minute
    throttled: int = 0  # 429s answered
    batches: int = 0  # batch requests admitted
    batch_items: int = 0  # items in the admitted batch requests
    refreshes: int = 0  # access tokens refreshed at the token endpoint
    arrivals: deque[float] = field(default_factory=deque, repr=False)

    def summary(self) -> dict[str, int]:
        keys = ("peak_in_flight", "peak_per_minute", "throttled", "refreshes", "batches", "batch_items")
        return {key: getattr(self, key) for key in keys}


class Throttle:
    """Sliding one-minute windows (divided by time_scale) on the engine clock, plus an in-flight count."""

    def __init__(self, limits: Limits, clock: Clock, time_scale: float) -> None:
        self.limits = limits
        self.clock = clock
        self.time_scale = time_scale
        self._requests: dict[str, deque[float]] = {}
        self._batches: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self.observed: dict[str, Observed] = {}

    def _window(self, store: dict[str, deque[float]], realm: str) -> deque[float]:
        window = store.setdefault(realm, deque())
        horizon = self.clock.monotonic() - 60.0 / self.time_scale
        while window and window[0] <= horizon:
            window.popleft()
        return window

    def admit(self, realm: str, *, batch: bool = False) -> bool:
        """Count one request (a batch in both the requests' and the batches' minute); False means answer 429.
        A refused request takes no slot and counts in no minute."""
        if self._in_flight.get(realm, 0) >= self.limits.max_in_flight:
            return False
        requests = self._window(self._requests, realm)
        if len(requests) >= self.limits.requests_per_minute:
            return False
        batches = self._window(self._batches, realm)
        if batch and len(batches) >= self.limits.batches_per_minute:
            return False
        now = self.clock.monotonic()
        requests.append(now)
        if batch:
            batches.append(now)
            seen = self.observed.setdefault(realm, Observed())
            seen.batches += 1
        self._in_flight[realm] = self._in_flight.get(realm, 0) + 1
        return True

    def arrived(self, realm: str) -> None:
        """Count a request from its arrival (before any injected latency) until `answered`. Arrivals are timed
        on the real clock: advancing the sandbox's clock (to expire tokens) must not empty the counted minute."""
        seen = self.observed.setdefault(realm, Observed())
        seen.open += 1
        seen.peak_in_flight = max(seen.peak_in_flight, seen.open)
        now = time.monotonic()
        seen.arrivals.append(now)
        while seen.arrivals and seen.arrivals[0] <= now - 60.0 / self.time_scale:
            seen.arrivals.popleft()
        seen.peak_per_minute = max(seen.peak_per_minute, len(seen.arrivals))

    def answered(self, realm: str, status: int) -> None:
        seen = self.observed.setdefault(realm, Observed())
        seen.open = max(0, seen.open - 1)
        if status == 429:
            seen.throttled += 1

    def refreshed(self, realm: str) -> None:
        self.observed.setdefault(realm, Observed()).refreshes += 1

    def release(self, realm: str) -> None:
        self._in_flight[realm] = max(0, self._in_flight.get(realm, 0) - 1)

    def in_flight(self, realm: str) -> int:
        return self._in_flight.get(realm, 0)


@dataclass
class Faults:
    """Faults injected through the control API; `realm` None means every company."""

    latency: float = 0.0
    statuses: list[int] = field(default_factory=list)
    drop_writes: int = 0
    realm: str | None = None

    def applies(self, realm: str) -> bool:
        return self.realm is None or self.realm == realm

    def next_status(self, realm: str) -> int | None:
        if self.statuses and self.applies(realm):
            return self.statuses.pop(0)
        return None

    def take_drop(self, realm: str) -> bool:
        if self.drop_writes > 0 and self.applies(realm):
            self.drop_writes -= 1
            return True
        return False
