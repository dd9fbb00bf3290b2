"""Xero's per-tenant limits on our side (60 calls a minute, 5 in flight) on the core's `LocalLimiter`, which
reads Xero's X-MinLimit-Remaining / X-DayLimit-Remaining and holds the tenant's slots after a 429."""

from __future__ import annotations

import httpx
from ledgerbridge.vendor import Budget, LocalLimiter
from ledgerbridge.vendor import Limiters as KeyedLimiters

from .settings import Limits


def budget(headers: httpx.Headers) -> Budget | None:
    """Xero's remaining calls: this minute's (the window resets within the limiter's minute) and today's."""
    minute, day = _count(headers.get("x-minlimit-remaining")), _count(headers.get("x-daylimit-remaining"))
    if minute is None and day is None:
        return None
    return Budget(remaining=minute, daily_remaining=day)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


class Limiters(KeyedLimiters[LocalLimiter]):
    """One limiter per tenant, created on first use."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(
            lambda: LocalLimiter(
                limits.calls_per_minute,
                limits.minute,
                limits.concurrent,
                longest_hold=limits.longest_wait,
                time_scale=limits.time_scale,
            )
        )
        self.limits = limits

    def for_tenant(self, tenant_id: str) -> LocalLimiter:
        return self.for_realm(tenant_id)
