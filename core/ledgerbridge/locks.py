"""A lock every process sharing the store respects (a token refresh, say), on the store's named leases
(`try_lock`): a holder that crashes frees it when its time runs out."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any


class LockTimeout(TimeoutError):
    pass


@contextlib.asynccontextmanager
async def store_lock(
    store: Any, key: str, hold_seconds: float = 60.0, wait_seconds: float = 60.0
) -> AsyncIterator[None]:
    """Hold `key` (at most `hold_seconds`, the longest the guarded work may take); wait for it up to
    `wait_seconds`, polling, then `LockTimeout`."""
    owner = secrets.token_hex(8)
    deadline = time.monotonic() + wait_seconds
    pause = 0.01
    while not await store.try_lock(key, owner, hold_seconds, time.time()):
        if time.monotonic() > deadline:
            raise LockTimeout(f"{key} is held elsewhere for longer than {wait_seconds:.0f} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.2)
    try:
        yield
    finally:
        await store.unlock(key, owner)
