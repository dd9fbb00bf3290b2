"""Xero's per-tenant limits on our side: at most 60 calls in a minute (aiolimiter) and 5 in flight."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter

from .settings import Limits


@dataclass
class TenantLimiter:
    rate: AsyncLimiter
    in_flight: asyncio.Semaphore
    day_remaining: int | None = None
    minute_remaining: int | None = None
    waits: list[float] = field(default_factory=list)  # Retry-After values honoured (tests, the card)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.in_flight:
            await self.rate.acquire()
            yield

    def observe(self, headers: dict[str, str] | object) -> None:
        get = getattr(headers, "get", None)
        if get is None:
            return
        for name, attribute in (
            ("x-daylimit-remaining", "day_remaining"),
            ("x-minlimit-remaining", "minute_remaining"),
        ):
            value = get(name)
            if value is not None and str(value).isdigit():
                setattr(self, attribute, int(value))


class Limiters:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._by_tenant: dict[str, TenantLimiter] = {}

    def for_tenant(self, tenant_id: str) -> TenantLimiter:
        found = self._by_tenant.get(tenant_id)
        if found is None:
            found = self._by_tenant[tenant_id] = TenantLimiter(
                AsyncLimiter(self.limits.calls_per_minute, self.limits.minute),
                asyncio.Semaphore(self.limits.concurrent),
            )
        return found
