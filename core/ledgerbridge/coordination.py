"""Work done once across every replica sharing a store, through the store's named leases (`try_lock`).

`run_once` is the double-checked pattern a token refresh needs: however many workers of however many
replicas find a token expired at the same moment, one refreshes it and the others wait and use the result.
`Lease` keeps a name held while a long job runs (a poller or an importer for one account).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from ledgerbridge.store import Store


def new_owner(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def run_once(
    store: Store,
    name: str,
    *,
    done: Callable[[], Awaitable[bool]],
    action: Callable[[], Awaitable[None]],
    clock: Callable[[], float] = time.time,
    ttl_seconds: float = 30.0,
    timeout_seconds: float = 30.0,
    poll_seconds: float = 0.05,
) -> bool:
    """Run `action` unless `done()` says it has happened; True if this call ran it.

    While another caller holds `name`, wait for it and check `done()` again. A holder that dies frees the
    name after `ttl_seconds`, which must exceed the action's duration.
    """
    owner = new_owner("once")
    deadline = time.monotonic() + timeout_seconds
    while not await done():
        if await store.try_lock(name, owner, ttl_seconds, clock()):
            try:
                if await done():
                    return False
                await action()
                return True
            finally:
                await store.unlock(name, owner)
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{name!r} stayed held by another replica for {timeout_seconds:.0f} s")
        await asyncio.sleep(poll_seconds)
    return False


@contextlib.asynccontextmanager
async def lease(
    store: Store, name: str, owner: str, ttl_seconds: float, clock: Callable[[], float] = time.time
) -> AsyncIterator[bool]:
    """Hold `name` for `owner` while the body runs, renewing it every third of `ttl_seconds`.

    Yields False (and holds nothing) when another owner has it. The lease is left to expire, not released,
    so the owner keeps it from one run to its next and other replicas take over only when it stops renewing.
    """
    if not await store.try_lock(name, owner, ttl_seconds, clock()):
        yield False
        return

    async def renew() -> None:
        while True:
            await asyncio.sleep(ttl_seconds / 3)
            await store.try_lock(name, owner, ttl_seconds, clock())

    renewer = asyncio.create_task(renew(), name=f"lease:{name}")
    try:
        yield True
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        await store.try_lock(name, owner, ttl_seconds, clock())
