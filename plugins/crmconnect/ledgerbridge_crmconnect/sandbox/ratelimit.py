"""HighLevel's API v2 limits: a burst window and a daily quota per app per location."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class _Bucket:
    window_start: float
    window_count: int
    day: str
    day_count: int


@dataclass
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: float


class RateLimiter:
    """Fixed window of `interval` seconds (already time-scaled by the caller) and a UTC-day counter."""

    def __init__(
        self,
        max_requests: Callable[[], int],
        interval: Callable[[], float],
        daily_limit: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_requests
        self._interval = interval
        self._daily = daily_limit
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def hit(self, client: str, location_id: str) -> Verdict:
        """Count one request; refused requests count against nothing."""
        now, today = self._clock(), datetime.now(UTC).strftime("%Y-%m-%d")
        maximum, interval, daily = self._max(), self._interval(), self._daily()
        with self._lock:
            bucket = self._buckets.get((client, location_id))
            if bucket is None:
                bucket = self._buckets[(client, location_id)] = _Bucket(now, 0, today, 0)
            if now - bucket.window_start >= interval:
                bucket.window_start, bucket.window_count = now, 0
            if bucket.day != today:
                bucket.day, bucket.day_count = today, 0
            allowed = bucket.window_count < maximum and bucket.day_count < daily
            if allowed:
                bucket.window_count += 1
                bucket.day_count += 1
            retry_after = max(0.0, bucket.window_start + interval - now)
            headers = {
                "X-RateLimit-Max": str(maximum),
                "X-RateLimit-Remaining": str(max(0, maximum - bucket.window_count)),
                "X-RateLimit-Interval-Milliseconds": str(round(interval * 1000)),
                "X-RateLimit-Limit-Daily": str(daily),
                "X-RateLimit-Daily-Remaining": str(max(0, daily - bucket.day_count)),
            }
        return Verdict(allowed, headers, retry_after)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
