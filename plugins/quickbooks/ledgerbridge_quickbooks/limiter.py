"""Intuit's per-realm limits on our side: N requests per (scaled) minute and M in flight, on the core's
`LocalLimiter`. Intuit sends no rate-limit headers and counts whole minutes, so the bucket lets only M go at
once and no minute ever holds more than N; a 429's Retry-After holds the realm's slots."""

from __future__ import annotations

from ledgerbridge.vendor import Limiters as KeyedLimiters
from ledgerbridge.vendor import LocalLimiter


class Limiters(KeyedLimiters[LocalLimiter]):
    """One limiter per realm (`for_realm`), created on first use."""

    def __init__(self, requests_per_window: int, max_in_flight: int, window_seconds: float) -> None:
        super().__init__(lambda: LocalLimiter(requests_per_window, window_seconds, max_in_flight, burst=max_in_flight))
