"""Xero's per-tenant limits on our side (60 calls a minute, 5 in flight) on the core's `LocalLimiter`, which
reads Xero's X-MinLimit-Remaining / X-DayLimit-Remaining and holds the tenant's slots after a 429."""

from __future__ import annotations

import httpx
from ledgerbridge import PluginContext
from ledgerbridge.vendor import Budget, Limiter, Limiters, LocalLimiter

from .settings import Limits


def budget(headers: httpx.Headers) -> Budget | None:
    """Xero's remaining calls: this minute's (the window resets within the limiter's minute) and today's."""
    minute, day = _count(headers.get("x-minlimit-remaining")), _count(headers.get("x-daylimit-remaining"))
    if minute is None and day is None:
        return None
    return Budget(remaining=minute, daily_remaining=day)


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def tenant_limiter(limits: Limits) -> LocalLimiter:
    return LocalLimiter(
        limits.calls_per_minute,
        limits.minute,
        limits.concurrent,
        longest_hold=limits.longest_wait,
        time_scale=limits.time_scale,
    )


def tenant_limiters(plugin: PluginContext, limits: Limits) -> Limiters[Limiter]:
    """One limiter per tenant (`for_realm`), created on first use; in the store when replicas share it."""
    return plugin.limiters(
        "tenant", limits.calls_per_minute, limits.minute, limits.concurrent,
        local=lambda _tenant: tenant_limiter(limits), longest_hold=limits.longest_wait, time_scale=limits.time_scale,
    )  # fmt: skip
