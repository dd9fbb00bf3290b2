"""The reconciliation poller: transactions since the checkpoint become Payments.

HighLevel sends no webhook for subscription renewals, memberships' later charges or refunds, and a webhook
can be lost. So each account's transactions are read from a checkpoint (minus an overlap) with limit/offset
pages; each becomes a Payment under the same external id the webhook path uses, so nothing counts twice.
A slower sweep re-reads recent weeks for refunds, which change old transactions without a webhook.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from ledgerbridge import AccountContext

from ledgerbridge_crmconnect.connection import Connections, ensure_bound, resolve, steering
from ledgerbridge_crmconnect.payments import PaymentFinder

CURSOR = "transactions_since"
LAST_RUN = "transactions_polled_at"
REFUND_SWEEP = "refunds_swept_at"
COVERED_FROM = "connected_at"  # the earliest moment the poller has read from
TICK_ENV = "LEDGERBRIDGE_CRM_POLL_TICK_SECONDS"


def tick_seconds() -> float:
    """How often the scheduler wakes the poller; each account's own interval is in its settings."""
    return float(os.environ.get(TICK_ENV, "15"))


def iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def poll(ctx: AccountContext, connections: Connections) -> int:
    """One reconciliation pass for one account, when due; returns how many payments it published."""
    resolved = await resolve(ctx)
    if not await ensure_bound(ctx, resolved) or not resolved.ready:
        return 0  # another account's location: paused with the reason once, not an error every tick
    settings = resolved.settings
    now = ctx.now()
    last_run = _seconds(await ctx.get_cursor(LAST_RUN))
    if last_run is not None and now - last_run < settings.poll_interval_seconds:
        return 0
    since = _seconds(await ctx.get_cursor(CURSOR))
    # From the account's sync start (the core's: the books' first connection, or a backfill date) onwards;
    # what the books would skip anyway is not worth reading.
    floor = await ctx.sync_start()
    connected = _seconds(await ctx.get_cursor(COVERED_FROM))
    if connected is None:
        connected = min(now, floor) if floor is not None else now
        await ctx.set_cursor(COVERED_FROM, iso(connected))
        await ctx.set_cursor(REFUND_SWEEP, iso(now))
    start = since if since is not None else connected
    if floor is not None and floor < connected:  # a backfill reaching further back: read that stretch once
        start = connected = floor
        await ctx.set_cursor(COVERED_FROM, iso(floor))
    start -= settings.poll_overlap_seconds
    client, _ = await connections.client(ctx, resolved)
    finder = PaymentFinder(ctx, client, resolved.location_id)
    published = 0
    async with steering():
        for txn in await finder.transactions(startAt=iso(start)):
            published += await finder.publish(txn)
        swept = _seconds(await ctx.get_cursor(REFUND_SWEEP))
        if swept is None or now - swept >= settings.refund_sweep_hours * 3600:
            sweep_start = max(now - settings.refund_lookback_days * 86_400, connected - settings.poll_overlap_seconds)
            for txn in await finder.transactions(startAt=iso(sweep_start)):
                if txn.amountRefunded > 0:
                    published += await finder.publish(txn)
            await ctx.set_cursor(REFUND_SWEEP, iso(now))
    # The checkpoint is when this pass began listing; the overlap covers clocks and late writes.
    await ctx.set_cursor(CURSOR, iso(now))
    await ctx.set_cursor(LAST_RUN, iso(now))
    if published:
        await ctx.log(f"reconciliation found {published} payment(s) no webhook had reported")
    return published
