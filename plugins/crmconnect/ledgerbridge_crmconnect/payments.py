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

import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
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
            RECENT.add(self.location_id, page.data)
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

    async def publish_order(self, order_id: str, payload: dict[str, Any] | None = None) -> int:
        """The webhook path: an order was paid; publish each of its transactions. Returns how many are known.

        The order is the webhook's own body when it carries what a Payment needs (OrderStatusUpdate.md
        documents the whole order); only a partial body costs `GET /payments/orders/{id}`. The transactions
        come from the location's recent listings when one saw them, else one listing around the order.
        """
        order = order_from_webhook(payload) if payload is not None else None
        if order is None or order._id != order_id:
            order = await self.order(order_id)
        if order is None or not order.is_paid:
            return 0
        txns = RECENT.of(self.location_id, order_id)
        if not txns:
            txns = await self.transactions_around(order)
        for txn in txns:
            await self.publish(txn, order)
        return len([t for t in txns if t.took_money])

    async def transactions_around(self, order: OrderWire) -> list[TransactionWire]:
        """The order's transactions, listing every transaction of a window around it in one call.

        Webhooks come in bursts: the other transactions of the window are remembered (RECENT), so the orders
        behind this one cost no call. A window too full for one page (`totalCount` above the limit) is
        narrowed for the next listing, and this order falls back to the `entityId` filter.
        """
        created = parse_datetime(order.createdAt, datetime.min.replace(tzinfo=UTC))
        if created.year == 1:
            return await self.transactions(entityId=order._id)
        width = RECENT.width(self.location_id)
        params = {**self._alt(), "startAt": iso_ms(created - WINDOW_BEFORE), "endAt": iso_ms(created + width),
                  "limit": WINDOW_LIMIT, "offset": 0}  # fmt: skip
        page = await self.client.get("/payments/transactions", transaction_list, params=params)
        RECENT.add(self.location_id, page.data)
        RECENT.fitted(self.location_id, page.totalCount <= len(page.data), len(page.data))
        mine = [t for t in page.data if t.entityId == order._id and t.took_money]
        if mine:
            return mine
        return await self.transactions(entityId=order._id)


def order_from_webhook(payload: dict[str, Any]) -> OrderWire | None:
    """The order an OrderCreate/OrderStatusUpdate body documents, or None when the body lacks what a Payment
    is built from (its id, amount and items); the body's own fields are the contract, never assumed."""
    if not all(isinstance(payload.get(field), kind) for field, kind in ORDER_FIELDS):
        return None
    try:
        order = msgspec.convert(payload, OrderWire, strict=False)
    except msgspec.ValidationError:
        return None
    return order if order._id and order.items else None


def iso_ms(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class RecentTransactions:
    """Transactions listed a moment ago, per location and order (`entityId`), for the webhooks behind them.

    Per process and bounded (oldest forgotten first, and after `ttl` seconds); a miss costs one listing, so
    a forgotten entry is never wrong, only a call. Only transactions that took money are served: one that
    was still processing is listed again.
    """

    def __init__(self, ttl: float = 600.0, max_orders: int = 20_000) -> None:
        self.ttl = ttl
        self.max_orders = max_orders
        self._by_order: OrderedDict[tuple[str, str], tuple[float, list[TransactionWire]]] = OrderedDict()
        self._width: dict[str, timedelta] = {}

    def add(self, location_id: str, txns: list[TransactionWire]) -> None:
        now = time.monotonic()
        grouped: dict[str, list[TransactionWire]] = {}
        for txn in txns:
            if txn.entityId and txn._id:
                grouped.setdefault(txn.entityId, []).append(txn)
        for order_id, found in grouped.items():
            self._by_order[(location_id, order_id)] = (now, found)
            self._by_order.move_to_end((location_id, order_id))
        while len(self._by_order) > self.max_orders:
            self._by_order.popitem(last=False)

    def of(self, location_id: str, order_id: str) -> list[TransactionWire]:
        entry = self._by_order.get((location_id, order_id))
        if entry is None or time.monotonic() - entry[0] > self.ttl:
            return []
        txns = entry[1]
        return txns if txns and all(t.took_money for t in txns) else []

    def width(self, location_id: str) -> timedelta:
        return self._width.get(location_id, WINDOW_AFTER)

    def fitted(self, location_id: str, complete: bool, listed: int) -> None:
        """Narrow the window after an overfull page; widen it again while pages come back half empty."""
        width = self.width(location_id)
        if not complete:
            width = max(width / 2, MIN_WINDOW)
        elif listed < WINDOW_LIMIT // 2:
            width = min(width * 2, WINDOW_AFTER)
        self._width[location_id] = width


ORDER_FIELDS = (("_id", str), ("amount", (int, float, str)), ("items", list))
WINDOW_BEFORE = timedelta(seconds=5)  # clocks: a transaction is stamped after its order, give or take
WINDOW_AFTER = timedelta(minutes=2)
MIN_WINDOW = timedelta(milliseconds=50)
WINDOW_LIMIT = 100
RECENT = RecentTransactions()
