"""Xero's API limits per app and tenant: 60 calls in a rolling minute, 5 in flight, 5,000 a day, and
10,000 a minute for the app across tenants. Every answer carries the remaining counts; a refusal is a 429
with Retry-After and X-Rate-Limit-Problem (minute, concurrent, daily or appminute)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import SandboxConfig

DAY = 86400.0


@dataclass
class Window:
    span: float
    calls: deque[float] = field(default_factory=deque)

    def count(self, now: float) -> int:
        while self.calls and self.calls[0] <= now - self.span:
            self.calls.popleft()
        return len(self.calls)

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.calls[0] + self.span - now)) if self.calls else 1


@dataclass
class Refusal:
    problem: str
    retry_after: int


class Limits:
    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.minute: dict[tuple[str, str], Window] = {}
        self.day: dict[tuple[str, str], Window] = {}
        self.app_minute: dict[str, Window] = {}
        self.in_flight: dict[tuple[str, str], int] = {}
        self.refusals = 0

    def _windows(self, client_id: str, tenant_id: str) -> tuple[Window, Window, Window]:
        key = (client_id, tenant_id)
        return (
            self.minute.setdefault(key, Window(self.config.minute_seconds)),
            self.day.setdefault(key, Window(DAY * self.config.minute_seconds / 60)),
            self.app_minute.setdefault(client_id, Window(self.config.minute_seconds)),
        )

    def acquire(self, client_id: str, tenant_id: str) -> Refusal | None:
        now = self.clock()
        minute, day, app = self._windows(client_id, tenant_id)
        key = (client_id, tenant_id)
        refusal = None
        if self.in_flight.get(key, 0) >= self.config.concurrent_calls:
            refusal = Refusal("concurrent", 1)
        elif day.count(now) >= self.config.calls_per_day:
            refusal = Refusal("daily", day.retry_after(now))
        elif minute.count(now) >= self.config.calls_per_minute:
            refusal = Refusal("minute", minute.retry_after(now))
        elif app.count(now) >= self.config.app_calls_per_minute:
            refusal = Refusal("appminute", app.retry_after(now))
        if refusal is not None:
            self.refusals += 1
            return refusal
        for window in (minute, day, app):
            window.calls.append(now)
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        return None

    def release(self, client_id: str, tenant_id: str) -> None:
        key = (client_id, tenant_id)
        self.in_flight[key] = max(0, self.in_flight.get(key, 0) - 1)

    def headers(self, client_id: str, tenant_id: str) -> dict[str, str]:
        now = self.clock()
        minute, day, app = self._windows(client_id, tenant_id)
        return {
            "X-DayLimit-Remaining": str(max(0, self.config.calls_per_day - day.count(now))),
            "X-MinLimit-Remaining": str(max(0, self.config.calls_per_minute - minute.count(now))),
            "X-AppMinLimit-Remaining": str(max(0, self.config.app_calls_per_minute - app.count(now))),
        }
