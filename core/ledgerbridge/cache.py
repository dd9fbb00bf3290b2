"""A tiny time-bounded cache for hot, rarely changing look-ups (which plugins an account has, which account
a vendor id belongs to). Short-lived, so a change made by another process shows within the TTL."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, V]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]], *, keep_none: bool = True) -> V:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] <= self._seconds:
            return entry[1]
        value = await load()
        if value is not None or keep_none:
            self._entries[key] = (now, value)
        return value

    def forget(self, key: Hashable | None = None) -> None:
        """Drop one key, or everything."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
