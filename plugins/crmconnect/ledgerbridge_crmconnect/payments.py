"""Payments: a CRM transaction (with its order, and subscription for renewals) becomes one `Payment`.

A payment is identified by the transaction that took the money, whichever path finds it. The webhook path
sees an order (`OrderStatusUpdate`) and finds its transactions by `entityId`; the poller sees transactions and
fetches their order. Both publish `payment:<transactionId>`, so neither path counts a payment twice; a refund
re-publishes it as `payment:<transactionId>:refunded:<amount refunded so far>`.

HighLevel reports refunds as one running total (`amountRefunded`). A consumer needs the money of each refund,
so every running total seen is remembered per transaction and the payment carries each refund as the
difference from the one before: 30 then 50 refunded so far are refunds of 30 and 20.

A payment on a CRM invoice is not a sale of its own (the invoice is); it is published only once refunded,
with `invoice_id`, so the refund reaches the books against that invoice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ledgerbridge import AccountContext, Contact, LineItem, Money, Payment, PaymentSourceKind, Refund

from ledgerbridge_crmconnect.client import CrmApiError, CrmClient
from ledgerbridge_crmconnect.wire import (
    OrderWire,
    SubscriptionWire,
    TransactionWire,
    currency_code,
    money,
    order_decoder,
    parse_datetime,
    subscription_decoder,
    transaction_list,
)

ORDER_FORM_SUBTYPES = frozenset({"one_step_order_form", "two_step_order_form", "upsell", "downsell", "order_form"})
PUBLISHED_LINK = "payment"  # external id → transaction id, so repeat sightings cost no API calls
REFUND_STEPS_LINK = "refund_steps"  # transaction id → every running refunded total seen, oldest first

RefundStep = tuple[Decimal, str | None]  # (refunded so far, when it was seen)


def source_kind(source_type: str | None, sub_type: str | None, recurring: bool) -> PaymentSourceKind:
    """order_form | subscription | membership | calendar | other, from `source.type` / `subType`.

    A membership checkout stays `membership` even when it recurs; any other recurring charge is a
    subscription, including a subscription bought through an order form.
    """
    if source_type == "membership":
        return "membership"
    if recurring:
        return "subscription"
    if source_type == "calendar":
        return "calendar"
    if sub_type == "subscription_view":
        return "subscription"
    if sub_type in ORDER_FORM_SUBTYPES or source_type in ("funnel", "form"):
        return "order_form"
    return "other"


def external_id(txn: TransactionWire) -> str:
    base = f"payment:{txn._id}"
    return f"{base}:refunded:{txn.amountRefunded.normalize():f}" if txn.amountRefunded > 0 else base


def refund_increments(txn_id: str, steps: list[RefundStep], currency: str, default_at: datetime) -> tuple[Refund, ...]:
    """Each refund's own money from the running totals seen (a total that did not grow is no refund)."""
    refunds: list[Refund] = []
    before = Decimal(0)
    for so_far, seen_at in steps:
        if so_far <= before:
            continue
        refunds.append(
            Refund(
                refund_id=f"payment:{txn_id}:refunded:{so_far.normalize():f}",
                amount=money(so_far - before, currency),
                refunded_at=parse_datetime(seen_at, default_at),
            )
        )
        before = so_far
    return tuple(refunds)


def build_payment(
    txn: TransactionWire,
    order: OrderWire | None,
    subscription: SubscriptionWire | None,
    refund_steps: list[RefundStep] | None = None,
) -> Payment:
    currency = currency_code(txn.currency or (order.currency if order else None))
    recurring = bool(txn.subscriptionId) or (order is not None and order.recurring) or txn.entityType == "subscription"
    billing = txn.meta.billingReason if txn.meta else None
    recurring = recurring or (billing or "").startswith("subscription")
    source_type = txn.source_type or (order.source.type if order and order.source else None)
    sub_type = txn.source_sub_type or (order.source.subType if order and order.source else None)
    total = money(txn.amount, currency)
    zero = Money.zero(currency)
    lines: tuple[LineItem, ...]
    if order is not None and order.amount == txn.amount and order.items:
        # The charge is the order (a checkout, or a renewal at the same price): its lines and summary apply.
        lines = tuple(item.to_domain(currency) for item in order.items)
        summary = order.amountSummary
        subtotal = money(summary.subtotal, currency) if summary else total
        discount = money(summary.discount, currency) if summary else zero
        tax = money(summary.tax, currency) if summary else zero
    else:
        name = _renewal_name(order, subscription) or "Payment"
        lines = (LineItem(name=name, quantity=Decimal(1), unit_price=total),)
        subtotal, discount, tax = total, zero, zero
    paid_at = parse_datetime(txn.createdAt)
    if refund_steps is None:
        refund_steps = [(txn.amountRefunded, txn.updatedAt)] if txn.amountRefunded > 0 else []
    refunds = refund_increments(txn._id, refund_steps, currency, paid_at)
    return Payment(
        payment_id=txn._id,
        source_kind=source_kind(source_type, sub_type, recurring),
        payer=_payer(txn, order),
        lines=lines,
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        total=total,
        paid_at=paid_at,
        order_id=order._id if order else (txn.entityId if txn.entityType == "order" else None),
        subscription_id=txn.subscriptionId or (subscription._id if subscription else None),
        payment_method=txn.paymentProviderType,
        reference=txn.chargeId,
        refunds=refunds,
        invoice_id=txn.crm_invoice_id if txn.is_invoice_payment else None,
    )


def _renewal_name(order: OrderWire | None, subscription: SubscriptionWire | None) -> str | None:
    if subscription is not None and subscription.recurringProduct is not None:
        return subscription.recurringProduct.name or None
    if order is not None:
        return next((item.name for item in order.items if item.recurring), None)
    return None


def _payer(txn: TransactionWire, order: OrderWire | None) -> Contact:
    payer = txn.payer()
    if order is not None and order.contactSnapshot is not None and (order.contactSnapshot.email or not payer.email):
        richer = order.contactSnapshot.to_domain()
        return richer if richer.email else payer
    return payer


class PaymentFinder:
    """Fetches what a transaction needs to become a Payment, and publishes it once."""

    def __init__(self, ctx: AccountContext, client: CrmClient, location_id: str) -> None:
        self.ctx = ctx
        self.client = client
        self.location_id = location_id

    def _alt(self) -> dict[str, str | int]:
        return {"altId": self.location_id, "altType": "location"}

    async def order(self, order_id: str) -> OrderWire | None:
        try:
            order: OrderWire = await self.client.get(
                f"/payments/orders/{order_id}", order_decoder, params={"altId": self.location_id}
            )
        except CrmApiError as exc:
            if exc.status == 404:
                return None
            raise
        return order

    async def subscription(self, subscription_id: str) -> SubscriptionWire | None:
        try:
            sub: SubscriptionWire = await self.client.get(
                f"/payments/subscriptions/{subscription_id}", subscription_decoder, params=self._alt()
            )
        except CrmApiError as exc:
            if exc.status == 404:
                return None
            raise
        return sub

    async def transactions(self, **filters: str | int) -> list[TransactionWire]:
        """Every transaction matching `filters`, following limit/offset pages."""
        found: list[TransactionWire] = []
        offset, limit = 0, 100
        while True:
            params = {**self._alt(), **filters, "limit": limit, "offset": offset}
            page = await self.client.get("/payments/transactions", transaction_list, params=params)
            found.extend(page.data)
            offset += len(page.data)
            if not page.data or offset >= page.totalCount:
                return found

    async def publish(self, txn: TransactionWire, order: OrderWire | None = None) -> bool:
        """Publish `txn` as a Payment unless it is not one or was published before; True if published now."""
        if not txn._id or not txn.took_money:
            return False
        if txn.is_invoice_payment and (txn.crm_invoice_id is None or txn.amountRefunded <= 0):
            return False  # the sale is the invoice; only a refund of it is news for the books
        event_id = external_id(txn)
        if await self.ctx.get_link(PUBLISHED_LINK, event_id) is not None:
            return False
        steps = await self.refund_steps(txn)
        subscription = None
        if txn.entityType == "subscription" and txn.entityId:
            subscription = await self.subscription(txn.entityId)
        if order is None:
            order_id = txn.entityId if txn.entityType == "order" else (subscription.entityId if subscription else None)
            order = await self.order(order_id) if order_id else None
        payment = build_payment(txn, order, subscription, steps)
        created: bool = await self.ctx.publish(payment, external_id=event_id)
        await self.ctx.put_link(PUBLISHED_LINK, event_id, txn._id)
        return created

    async def refund_steps(self, txn: TransactionWire) -> list[RefundStep]:
        """The running refunded totals seen for `txn`, this sighting's added when it grew."""
        link = await self.ctx.get_link(REFUND_STEPS_LINK, txn._id)
        stored = list(link.data.get("steps", [])) if link else []
        steps: list[RefundStep] = [(Decimal(str(so_far)), at) for so_far, at in stored]
        last = steps[-1][0] if steps else Decimal(0)
        if txn.amountRefunded > last:
            steps.append((txn.amountRefunded, txn.updatedAt))
            await self.ctx.put_link(
                REFUND_STEPS_LINK, txn._id, txn._id, steps=[[f"{so_far:f}", at] for so_far, at in steps]
            )
        return steps

    async def publish_order(self, order_id: str) -> int:
        """The webhook path: an order was paid; publish each of its transactions. Returns how many are known."""
        order = await self.order(order_id)
        if order is None or not order.is_paid:
            return 0
        txns = await self.transactions(entityId=order_id)
        for txn in txns:
            await self.publish(txn, order)
        return len([t for t in txns if t.took_money])
