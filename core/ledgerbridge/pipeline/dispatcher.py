"""The delivery workers: claim due deliveries under a lease, call the plugin's hook, record the outcome.

Deliveries about one object (same account, plugin and object key) run in order because the store only
hands out the oldest pending one of each key; different keys run in parallel up to `concurrency`.
A worker that dies leaves its lease to expire, and the delivery is claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any

import msgspec

from ledgerbridge.context import DeliveryContext
from ledgerbridge.errors import DeliveryError, PermanentFailure, ReauthorizationRequired, RetryLater, Skip
from ledgerbridge.events import decode_event
from ledgerbridge.observability import metrics
from ledgerbridge.observability.context import delivery_scope
from ledgerbridge.pipeline.backoff import Backoff
from ledgerbridge.store import ClaimedDelivery, DeliveryState

if TYPE_CHECKING:
    from ledgerbridge.runtime import Runtime

RECLAIM_PAUSE_SECONDS = 0.05
logger = logging.getLogger("ledgerbridge.dispatcher")


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {text}"


def error_details(exc: BaseException) -> dict[str, Any]:
    """Extra facts an exception carries for the activity log (e.g. a vendor's transaction id)."""
    details = getattr(exc, "details", None)
    return dict(details) if isinstance(details, dict) else {}


class Dispatcher:
    def __init__(
        self,
        runtime: Runtime,
        *,
        concurrency: int = 8,
        lease_seconds: float = 60.0,
        max_attempts: int = 10,
        backoff: Backoff | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._runtime = runtime
        self._concurrency = concurrency
        self._lease_seconds = lease_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._poll_interval = poll_interval
        self.owner = f"worker-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: dict[asyncio.Task[None], int] = {}
        self._renewer: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._claim_loop(), name="ledgerbridge-dispatcher")
        self._renewer = asyncio.create_task(self._renew_leases(), name="ledgerbridge-lease-renewer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, let running deliveries finish for up to `timeout`, then free unfinished leases."""
        self._stopping = True
        self.wake()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._in_flight:
            _, pending = await asyncio.wait(list(self._in_flight), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        await self._runtime.store.release_leases(self.owner)

    async def _renew_leases(self) -> None:
        """Keep the leases of long-running deliveries alive, so only a dead worker's leases expire."""
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                until = self._runtime.clock() + self._lease_seconds
                await self._runtime.store.renew_leases(self.owner, list(self._in_flight.values()), until)
            except Exception:
                logger.exception("renewing leases failed")

    async def _claim_loop(self) -> None:
        store = self._runtime.store
        while not self._stopping:
            self._wake.clear()
            free = self._concurrency - len(self._in_flight)
            claimed: list[ClaimedDelivery] = []
            if free > 0:
                try:
                    claimed = await store.claim_deliveries(self.owner, free, self._lease_seconds, self._runtime.clock())
                except Exception:
                    logger.exception("claiming deliveries failed")
            now = self._runtime.clock() if claimed else 0.0
            for item in claimed:
                # ready_at, as the store sets it, is the later of the next attempt and an expired lease
                metrics.CLAIM_LAG.labels(item.delivery.plugin).observe(max(now - item.delivery.next_attempt_at, 0.0))
                task = asyncio.create_task(self._process(item))
                self._in_flight[task] = item.delivery.id
                task.add_done_callback(self._finished)
            if len(claimed) == free and free > 0:
                continue
            await self._sleep_until_due()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self.wake()

    async def _sleep_until_due(self) -> None:
        if len(self._in_flight) >= self._concurrency:
            await self._wake.wait()  # every worker is busy: the next finish (or stop) wakes the loop
            return
        timeout = self._poll_interval
        if len(self._in_flight) >= self._concurrency:
            # every worker is busy: only a finish (which wakes us) frees one; asking for due work would spin
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            return
        due = await self._runtime.store.next_due_at()
        if due is not None:
            timeout = min(timeout, max(due - self._runtime.clock(), 0.0))
        if timeout <= 0:
            # became due since the claim, or another replica took it: claim again soon, without spinning
            timeout = min(self._poll_interval, RECLAIM_PAUSE_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    async def _process(self, item: ClaimedDelivery) -> None:
        delivery = item.delivery
        # its event's request id, the account, plugin and delivery go into every log line while it runs
        with delivery_scope(item.event.request_id, delivery.account_id, delivery.plugin, delivery.id):
            await self._run(item)

    async def _run(self, item: ClaimedDelivery) -> None:
        runtime, store = self._runtime, self._runtime.store
        delivery, event_record = item.delivery, item.event
        account = await store.get_account(delivery.account_id)
        if account is None:
            return
        ctx = DeliveryContext(
            runtime,
            delivery.plugin,
            account,
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            event_type=delivery.event_type,
            event_external_id=event_record.external_id,
            source=event_record.source,
            received_at=event_record.received_at,
        )
        label = f"{delivery.event_type} {event_record.external_id}"
        started_at = runtime.clock()
        try:
            event = decode_event(event_record.payload)
        except msgspec.DecodeError as exc:
            await self._finish(ctx, "dead", f"the stored event cannot be read: {exc}", label)
            return
        if not delivery.forced:
            state = await store.get_plugin_state(account.id, delivery.plugin)
            reason = await runtime.skip_reason(account, state, event)
            if reason is not None:
                await self._finish(ctx, "skipped", reason, label)
                return
        try:
            with metrics.DELIVERY_SECONDS.labels(delivery.plugin).time():
                await runtime.plugins.deliver(delivery.plugin, ctx, event)
        except Skip as exc:
            await self._finish(ctx, "skipped", describe(exc), label)
        except ReauthorizationRequired as exc:
            # refused with credentials the user may have replaced meanwhile: then just try again
            metrics.DELIVERY_PAUSES.labels(delivery.plugin).inc()
            logger.warning("%s: paused %s: %s", label, delivery.plugin, describe(exc))
            await runtime.pause(account.id, delivery.plugin, describe(exc), observed_at=started_at)
            await store.release_delivery(delivery.id, self.owner, refund_attempt=True, now=runtime.clock())
        except PermanentFailure as exc:
            await self._finish(ctx, "dead", describe(exc), label, error_details(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._retry_or_bury(ctx, exc, label)
        else:
            await self._finish(ctx, "done", None, label)

    async def _retry_or_bury(self, ctx: DeliveryContext, exc: Exception, label: str) -> None:
        message, details = describe(exc), error_details(exc)
        if ctx.attempt >= self._max_attempts:
            await self._finish(ctx, "dead", f"gave up after {ctx.attempt} attempts: {message}", label, details)
            return
        retry_after = exc.retry_after if isinstance(exc, RetryLater) else None
        delay = self._backoff.delay(ctx.attempt, retry_after)
        now = self._runtime.clock()
        if await self._runtime.store.schedule_retry(ctx.delivery_id, self.owner, now + delay, message, now):
            metrics.DELIVERY_RETRIES.labels(ctx.plugin).inc()
            logger.info("%s: attempt %d failed, retrying in %.1f s: %s", label, ctx.attempt, delay, message)
            await ctx.log(
                f"{label}: attempt {ctx.attempt} failed, retrying in {delay:.1f}s: {message}",
                level="warning",
                delivery_id=ctx.delivery_id,
                **details,
            )

    async def _finish(
        self,
        ctx: DeliveryContext,
        state: DeliveryState,
        error: str | None,
        label: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        store = self._runtime.store
        if not await store.finish_delivery(ctx.delivery_id, self.owner, state, error, self._runtime.clock()):
            logger.warning("delivery %s: lease lost before it finished", ctx.delivery_id)
            return
        metrics.DELIVERIES_FINISHED.labels(ctx.plugin, state).inc()
        logger.log(
            logging.WARNING if state == "dead" else logging.INFO,
            "%s: %s%s",
            label,
            state,
            f": {error}" if error else "",
        )
        if state == "dead":
            await ctx.log(
                f"{label}: dead letter: {error}", level="error", delivery_id=ctx.delivery_id, **(details or {})
            )
        elif state == "skipped":
            await ctx.log(f"{label}: skipped: {error}", delivery_id=ctx.delivery_id)
