"""The worker side of webhooks: stored notifications become domain events, with the pipeline's retries."""

from __future__ import annotations

from typing import Any

from ledgerbridge import DeliveryContext, Notification, RetryLater, Skip

from ledgerbridge_crmconnect.connection import Connections, steering
from ledgerbridge_crmconnect.invoices import CHANGE_KINDS, invoice_change
from ledgerbridge_crmconnect.payments import PaymentFinder
from ledgerbridge_crmconnect.webhooks import ORDER_KINDS

# An order paid a moment ago may not list its transaction yet; after this many tries the poller takes over.
ORDER_TRANSACTION_ATTEMPTS = 3


async def handle(ctx: DeliveryContext, connections: Connections, notification: Notification) -> None:
    payload: Any = notification.payload
    if not isinstance(payload, dict):
        raise Skip("the notification payload is not an object")
    client, resolved = await connections.client(ctx)
    async with steering():
        if notification.kind in CHANGE_KINDS:
            change = await invoice_change(client, resolved.location_id, notification.kind, payload)
            await ctx.publish(change, external_id=f"{change.kind}:{ctx.event_external_id}")
        elif notification.kind in ORDER_KINDS:
            await _order(ctx, PaymentFinder(ctx, client, resolved.location_id), payload)
        else:
            raise Skip(f"{notification.kind} events are not used")


async def _order(ctx: DeliveryContext, finder: PaymentFinder, payload: dict[str, Any]) -> None:
    order_id = payload.get("_id")
    if not isinstance(order_id, str) or not order_id:
        raise Skip("order event without an order id")
    if payload.get("status") not in (None, "completed") and payload.get("paymentStatus") not in ("paid",):
        raise Skip(f"order {order_id} is {payload.get('status')}, not paid")
    if await finder.publish_order(order_id, payload) == 0:
        if ctx.attempt < ORDER_TRANSACTION_ATTEMPTS:
            raise RetryLater(f"order {order_id} shows no successful transaction yet")
        raise Skip(f"order {order_id} has no successful transaction; the reconciliation poller will find it later")
