"""Sales receipts of one realm go out together when the realm's limit binds: Intuit's batch endpoint.

Each create queues here. A flusher waits for a slot of the realm's limiter, as a single request would, and
only then looks at the queue: one receipt goes as the single create it always was (its own requestid, no
added wait when the limit does not bind); two or more take a slot of the batch limiter too (Intuit allows 120
batch requests a minute per realm, each counted in the realm's 500 and its 10 in flight as well) and go as
one batch of at most 30, taken when that slot is granted, so the longer the wait, the fuller the batch.
Batches thus form by themselves when a backlog meets the limit, and only then. One flusher at a time waits
for a slot: a slot is never taken for nothing.

Safety:
- the batch's requestid is a digest of its items' request ids: a resend of the same batch (the client's
  short retries) replays Intuit's first answer instead of creating again;
- an item whose answer was lost (a dropped connection) fails as a single create's would, and its delivery's
  retry finds the document by its marker before any re-create (`markers.create_once` records the intent
  before the item is queued), so nothing is created twice;
- an item's Fault raises that item's typed error, as a single create would; the batch's other items succeed;
- items of one batch cannot see each other's results and Intuit answers in any order: answers are matched by
  bId, and only independent creates (receipts of different payments) are queued here.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import TypeVar, cast

from ledgerbridge.vendor import AdaptiveLimiter, Budget, Held, Limiter, Limiters

from . import wire
from .client import BATCH_MAX, MAX_BATCH_REQUEST_ID, QuickBooksClient, held

E = TypeVar("E", bound=wire.Entity)
BATCH_PREFIX = "batch-"


def batch_request_id(request_ids: Iterable[str]) -> str:
    """The same ≤ 36 characters for the same items, in whatever order they were queued."""
    digest = hashlib.sha256("\n".join(sorted(request_ids)).encode()).hexdigest()
    return BATCH_PREFIX + digest[: MAX_BATCH_REQUEST_ID - len(BATCH_PREFIX)]


class Joint:
    """Several limiters as one: a slot of each (a batch request counts in the realm's limits and in Intuit's
    batch limit), and the vendor's word goes to each."""

    def __init__(self, *limiters: Limiter) -> None:
        self.limiters: list[Limiter] = list(limiters)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            for limiter in self.limiters:
                await stack.enter_async_context(limiter.slot())
            yield

    def observe(self, budget: Budget) -> None:
        for limiter in self.limiters:
            if isinstance(limiter, AdaptiveLimiter):
                limiter.observe(budget)

    def hold(self, seconds: float) -> None:
        for limiter in self.limiters:
            if isinstance(limiter, AdaptiveLimiter):
                limiter.hold(seconds)


class Reserved(Joint):
    """The limiters of one send whose slots were taken before it chose what to send: its first attempt uses
    them; a resend (the client's short retries) takes a new slot of every limiter."""

    def __init__(self) -> None:
        super().__init__()
        self._held: list[contextlib.AbstractAsyncContextManager[None]] = []

    async def take(self, limiter: Limiter) -> None:
        slot = limiter.slot()
        await slot.__aenter__()
        self._held.append(slot)
        self.limiters.append(limiter)

    async def release(self) -> None:
        while self._held:
            await self._held.pop().__aexit__(None, None, None)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if not self._held:
            async with super().slot():
                yield
            return
        try:
            yield
        finally:
            await self.release()


@dataclass(eq=False)
class _Queued:
    client: QuickBooksClient
    entity: wire.Entity
    request_id: str
    answer: asyncio.Future[wire.Entity]

    def succeed(self, created: wire.Entity) -> None:
        if not self.answer.done():
            self.answer.set_result(created)

    def fail(self, error: BaseException) -> None:
        if not self.answer.done():
            self.answer.set_exception(error)


def _own_copy(error: Exception) -> Exception:
    """One error object per waiting delivery (each raises it with its own traceback)."""
    try:
        return copy.copy(error)
    except Exception:  # an error that cannot be copied is shared
        return error


class RealmBatcher:
    """The create queue of one realm and its flushers (see the module's docstring)."""

    def __init__(self, batch_limiter: Limiter) -> None:
        self.batch_limiter = batch_limiter
        self._queue: deque[_Queued] = deque()
        self._waiting = 0  # flushers that have not taken their items yet (0 or 1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        # what went out, for the card and benchmarks
        self.singles = 0
        self.batches = 0
        self.batched = 0

    @property
    def queued(self) -> int:
        """Creates waiting for a slot."""
        return len(self._queue)

    async def create(self, client: QuickBooksClient, entity: E, request_id: str) -> E:
        """Create `entity` (with `request_id` when it goes alone); returns it as QuickBooks answered, or
        raises the typed error a single create would."""
        item = _Queued(client, entity, request_id, asyncio.get_running_loop().create_future())
        self._queue.append(item)
        self._start_flusher()
        try:
            return cast(E, await item.answer)
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._queue.remove(item)  # not sent yet: nothing to find later
            raise

    def _start_flusher(self) -> None:
        if self._waiting or not self._queue or self._closed:
            return
        self._waiting += 1
        task = asyncio.create_task(self._flush(), name="quickbooks-batcher")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        reserved = Reserved()
        items: list[_Queued] = []
        try:
            try:
                await self._admit(reserved)
            except Exception as exc:  # e.g. the realm held longer than a worker waits: so is every queued create
                self._fail_queued(held(exc) if isinstance(exc, Held) else exc)
            else:
                most = BATCH_MAX if self.batch_limiter in reserved.limiters else 1
                items = [self._queue.popleft() for _ in range(min(most, len(self._queue)))]
            finally:
                self._waiting -= 1
                self._start_flusher()  # what is left waits for the next slot
            if len(items) == 1:
                await self._single(items[0], reserved)
            elif items:
                await self._batch(items, reserved)
        except BaseException:
            for item in items:
                item.answer.cancel()
            raise
        finally:
            await reserved.release()  # still held when nothing was left to send

    async def _admit(self, reserved: Reserved) -> None:
        """A slot of the realm's limiter; of the batch limiter too when more than one create is queued."""
        if self._queue:
            await reserved.take(self._queue[0].client.limiter)
        if len(self._queue) > 1:
            await reserved.take(self.batch_limiter)

    def _fail_queued(self, error: Exception) -> None:
        while self._queue:
            self._queue.popleft().fail(_own_copy(error))

    async def _single(self, item: _Queued, reserved: Reserved) -> None:
        self.singles += 1
        try:
            created = await item.client.with_limiter(reserved).create(item.entity, item.request_id)
        except Exception as exc:
            item.fail(exc)
        else:
            item.succeed(created)

    async def _batch(self, items: list[_Queued], reserved: Reserved) -> None:
        self.batches += 1
        self.batched += len(items)
        by_bid = {str(n): item for n, item in enumerate(items)}
        client = items[0].client.with_limiter(reserved)
        try:
            answers = await client.batch_create(
                {bid: item.entity for bid, item in by_bid.items()}, batch_request_id(i.request_id for i in items)
            )
        except Exception as exc:
            for item in items:
                item.fail(_own_copy(exc))
            return
        for bid, item in by_bid.items():
            answer = answers[bid]
            if isinstance(answer, Exception):
                item.fail(answer)
            else:
                item.succeed(answer)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._fail_queued(RuntimeError("the QuickBooks plugin is shutting down"))


class Batchers:
    """One `RealmBatcher` per realm, on the plugin's batch limiters; `enabled` False sends every create alone
    (benchmarks compare both in one run)."""

    def __init__(self, batch_limiters: Limiters[Limiter], *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._limiters = batch_limiters
        self._by_realm: dict[str, RealmBatcher] = {}

    def for_client(self, client: QuickBooksClient) -> RealmBatcher | None:
        if not self.enabled:
            return None
        found = self._by_realm.get(client.realm_id)
        if found is None:
            found = self._by_realm[client.realm_id] = RealmBatcher(self._limiters.for_realm(client.realm_id))
        return found

    def batch_client(self, client: QuickBooksClient) -> QuickBooksClient:
        """`client` for a batch request of its own: each request takes a slot of the realm's limiter and of
        Intuit's batch limit."""
        return client.with_limiter(Joint(client.limiter, self._limiters.for_realm(client.realm_id)))

    def realm(self, realm_id: str) -> RealmBatcher | None:
        return self._by_realm.get(realm_id)

    async def close(self) -> None:
        for batcher in self._by_realm.values():
            await batcher.close()
