"""Durable intake: events are committed before their producer acknowledges them.

Concurrent publishers share commits (group commit): while one batch is being written, new events queue
up and go out together in the next transaction, so a burst of webhooks costs a few fsyncs, not one each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ledgerbridge.store import NewEvent, Store


class Intake:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        on_commit: Callable[[], None] = lambda: None,
        max_batch: int = 500,
    ) -> None:
        self._store = store
        self._clock = clock
        self._on_commit = on_commit
        self._max_batch = max_batch
        self._queue: list[tuple[NewEvent, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def publish(self, event: NewEvent) -> bool:
        """Store `event` and its deliveries; True when new, False when already stored."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_batches())
        # shield: a publisher that gives up must not cancel a commit others are waiting on
        return await asyncio.shield(future)

    async def _write_batches(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                created = await self._store.append_events([event for event, _ in batch], self._clock())
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), is_new in zip(batch, created, strict=True):
                if not future.done():
                    future.set_result(is_new)
            self._on_commit()

    async def drain(self) -> None:
        """Wait until everything queued so far is written."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
