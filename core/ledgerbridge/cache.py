"""Small in-memory caches for hot, rarely changing look-ups (which plugins an account has, which account a
vendor id belongs to, how a webhook's account is connected).

`TtlCache` keeps a value for a few seconds, so a change made by another process shows within the TTL. A
value may also carry a version from `Versions`, counters that this process's writers bump: a change made here
(a rotated key, a disconnect) makes the cached value stale at once, without waiting for the TTL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Versions:
    """Per-key change counters of this process: writers `bump`, readers compare `of(key)` with what they saw."""

    def __init__(self) -> None:
        self._counts: dict[Hashable, int] = {}
        self._everything = 0

    def bump(self, key: Hashable | None = None) -> None:
        """Something about `key` changed (None: about everything)."""
        if key is None:
            self._everything += 1
        else:
            self._counts[key] = self._counts.get(key, 0) + 1

    def of(self, key: Hashable) -> tuple[int, int]:
        return self._everything, self._counts.get(key, 0)


class TtlCache(Generic[V]):
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Hashable, V]] = {}

    async def get(
        self,
        key: Hashable,
        load: Callable[[], Awaitable[V]],
        *,
        keep_none: bool = True,
        version: Hashable = None,
    ) -> V:
        """The cached value of `key` if it is younger than the TTL and was loaded at `version`; else `load()`.

        The version is read before loading: a change made while the load runs leaves a value that the next
        call, seeing the newer version, loads again."""
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] <= self._seconds and entry[1] == version:
            return entry[2]
        value = await load()
        if value is not None or keep_none:
            self._entries[key] = (now, version, value)
        return value

    def forget(self, key: Hashable | None = None) -> None:
        """Drop one key, or everything."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
