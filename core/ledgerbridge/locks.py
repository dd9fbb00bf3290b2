"""A lock every process sharing the store respects (a token refresh, say), on the store's named leases
(`try_lock`): the lease is short and renewed while its holder works, so a holder that crashes frees it within
`LEASE_SECONDS`, however long the guarded work was allowed to take."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

#: How long a lock outlives a holder that died (SIGKILL, a lost machine); the holder renews it every third.
LEASE_SECONDS = 10.0


class LockTimeout(TimeoutError):
    pass


@contextlib.asynccontextmanager
async def store_lock(
    store: Any, key: str, hold_seconds: float = 60.0, wait_seconds: float = 60.0
) -> AsyncIterator[None]:
    """Hold `key` (at most `hold_seconds`, the longest the guarded work may take); wait for it up to
    `wait_seconds`, polling, then `LockTimeout`."""
    owner = secrets.token_hex(8)
    lease = min(hold_seconds, LEASE_SECONDS)
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while not await store.try_lock(key, owner, lease, time.time()):
        if time.monotonic() > deadline:
            raise LockTimeout(f"{key} is held elsewhere for longer than {wait_seconds:.0f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    renewer = asyncio.create_task(_renew(store, key, owner, lease, hold_seconds), name=f"lock-renewer:{key}")
    try:
        yield
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        await store.unlock(key, owner)


async def _renew(store: Any, key: str, owner: str, lease: float, hold_seconds: float) -> None:
    """Extend the lease while the holder works, up to `hold_seconds` in all (then it runs out)."""
    until = time.monotonic() + hold_seconds
    while True:
        await asyncio.sleep(lease / 3)
        left = until - time.monotonic()
        if left <= 0:
            return
        with contextlib.suppress(Exception):  # the store failing now: the lease runs out, as before
            await store.try_lock(key, owner, min(lease, left), time.time())
