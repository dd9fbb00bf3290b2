"""Intuit's per-realm limits on our side: N requests per (scaled) minute and M in flight. Intuit sends no
rate-limit headers and counts whole minutes, so a realm's bucket lets only M go at once and no minute ever holds
more than N; a 429's Retry-After holds the realm's slots. The core keeps the counts in the store when replicas
share it (every replica together within Intuit's limits), else in this process (the kit's `LocalLimiter`).
Batch requests count in the realm's limits and, besides, in a batch limit of their own (120 a minute)."""

from __future__ import annotations

from ledgerbridge import PluginContext
from ledgerbridge.vendor import Limiter, Limiters, LocalLimiter

from .settings import Limits


def realm_limiter(limits: Limits) -> LocalLimiter:
    return LocalLimiter(limits.requests_per_minute, limits.window_seconds, limits.max_in_flight,
                        burst=limits.max_in_flight)  # fmt: skip


def realm_limiters(plugin: PluginContext, limits: Limits) -> Limiters[Limiter]:
    """One limiter per realm (`for_realm`), created on first use."""
    return plugin.limiters(
        "realm", limits.requests_per_minute, limits.window_seconds, limits.max_in_flight,
        local=lambda _realm: realm_limiter(limits),
    )  # fmt: skip


BATCHES_PER_MINUTE = 120  # Intuit's batch requests per minute per realm since 2025-10-31 (40 before)


def batch_limiter(limits: Limits) -> LocalLimiter:
    return LocalLimiter(BATCHES_PER_MINUTE, limits.window_seconds, limits.max_in_flight,
                        burst=limits.max_in_flight)  # fmt: skip


def batch_limiters(plugin: PluginContext, limits: Limits) -> Limiters[Limiter]:
    """Intuit's own count of batch requests per realm, beside the realm's: a batch takes a slot of both."""
    return plugin.limiters(
        "batch", BATCHES_PER_MINUTE, limits.window_seconds, limits.max_in_flight,
        local=lambda _realm: batch_limiter(limits),
    )  # fmt: skip
