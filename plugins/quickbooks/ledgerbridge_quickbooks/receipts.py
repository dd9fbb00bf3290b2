"""on_payment: a CRM payment becomes one SalesReceipt; each refund of it one RefundReceipt."""

from __future__ import annotations

import hashlib
from decimal import Decimal

from ledgerbridge import DeliveryContext, LineItem, Money, Payment, Refund

from . import customers, errors, names, pricing, wire
from .client import QuickBooksClient, request_id
from .company import US_NON_TAXABLE, CompanySetup
from .service import Service

RECEIPT_LINK = "sales_receipt"
REFUND_LINK = "refund_receipt"
MAX_REF_NUM = 21
MAX_NOTE = 4000


async def on_payment(ctx: DeliveryContext, service: Service, payment: Payment) -> None:
    client = await service.client(ctx)
    setup = await service.company(client)
    key = ctx.idempotency_key
    link = await ctx.get_link(RECEIPT_LINK, payment.payment_id)
    if link is None:
        customer_id = await _create_receipt(ctx, service, client, setup, payment, key)
    else:
        customer_id = str(link.data.get("customer_id", ""))
    for refund in payment.refunds:
        if await ctx.get_link(REFUND_LINK, refund.refund_id) is None:
            await _create_refund(ctx, service, client, setup, payment, refund, customer_id, key)


async def _create_receipt(
    ctx: DeliveryContext, service: Service, client: QuickBooksClient, setup: CompanySetup, payment: Payment, key: str
) -> str:
    totals = pricing.Totals(
        subtotal=payment.subtotal.amount, discount=payment.discount.amount, tax=payment.tax.amount,
        total=payment.total.amount,
    )  # fmt: skip
    for attempt in range(2):
        customer_id = await customers.resolve(ctx, service, client, payment.payer, key)
        refs = await names.item_refs(ctx, service, client, setup, pricing.item_names(payment.lines), key)
        method = await names.payment_method_ref(ctx, service, client, payment.payment_method, key)
        priced = pricing.price(payment.lines, totals, setup, refs)
        receipt = wire.SalesReceipt(
            CustomerRef=wire.Ref(value=customer_id),
            TxnDate=payment.paid_at.date(),
            Line=priced.lines,
            ApplyTaxAfterDiscount=priced.apply_tax_after_discount,
            TxnTaxDetail=wire.TxnTaxDetail(TotalTax=Decimal(0)) if setup.us else None,
            PaymentMethodRef=method,
            PaymentRefNum=(payment.reference or payment.payment_id)[:MAX_REF_NUM],
            PrivateNote=_note(payment, priced.note),
            BillEmail=wire.EmailAddress(Address=payment.payer.email) if payment.payer.email else None,
        )
        try:
            created = await client.create(receipt, request_id(key, "receipt" if attempt == 0 else "receipt-r"))
        except errors.InvalidReferenceError:
            if attempt:
                raise
            # a linked customer or item was made inactive in QuickBooks: look them up again
            await customers.forget(ctx, payment.payer)
            for name in pricing.item_names(payment.lines):
                await ctx.delete_link(names.ITEM_LINK, name.casefold())
            continue
        await ctx.put_link(
            RECEIPT_LINK, payment.payment_id, created.Id or "", customer_id=customer_id, total=str(created.TotalAmt)
        )
        await _check_total(ctx, "sales receipt", created.Id, created.TotalAmt, payment.total.amount)
        return customer_id
    raise AssertionError("unreachable")


async def _create_refund(
    ctx: DeliveryContext,
    service: Service,
    client: QuickBooksClient,
    setup: CompanySetup,
    payment: Payment,
    refund: Refund,
    customer_id: str,
    key: str,
) -> None:
    if not customer_id:
        customer_id = await customers.resolve(ctx, service, client, payment.payer, key)
    amount = refund.amount.amount
    line = LineItem(
        name=pricing.DEFAULT_ITEM,
        quantity=Decimal(1),
        unit_price=Money(amount=amount, currency=refund.amount.currency),
        description=f"Refund of CRM payment {payment.payment_id}",
    )
    refs = await names.item_refs(ctx, service, client, setup, [pricing.DEFAULT_ITEM], key)
    totals = pricing.Totals(subtotal=amount, discount=Decimal(0), tax=Decimal(0), total=amount)
    code = US_NON_TAXABLE if setup.us else setup.zero_code
    priced = pricing.fold([line], totals, refs, code, "refund")
    method = await names.payment_method_ref(ctx, service, client, payment.payment_method, key)
    step = "refund-" + hashlib.sha256(refund.refund_id.encode()).hexdigest()[:12]
    created = await client.create(
        wire.RefundReceipt(
            CustomerRef=wire.Ref(value=customer_id),
            TxnDate=refund.refunded_at.date(),
            Line=priced.lines,
            TxnTaxDetail=wire.TxnTaxDetail(TotalTax=Decimal(0)) if setup.us else None,
            PaymentMethodRef=method,
            PaymentRefNum=refund.refund_id[:MAX_REF_NUM],
            PrivateNote=f"CRM refund {refund.refund_id} of payment {payment.payment_id}",
        ),
        request_id(key, step),
    )
    await ctx.put_link(REFUND_LINK, refund.refund_id, created.Id or "", payment_id=payment.payment_id)
    await _check_total(ctx, "refund receipt", created.Id, created.TotalAmt, amount)


def _note(payment: Payment, pricing_note: str) -> str:
    parts = [f"CRM payment {payment.payment_id} ({payment.source_kind})"]
    if payment.order_id:
        parts.append(f"order {payment.order_id}")
    if payment.subscription_id:
        parts.append(f"subscription {payment.subscription_id}")
    if pricing_note:
        parts.append(pricing_note)
    return "; ".join(parts)[:MAX_NOTE]


async def _check_total(
    ctx: DeliveryContext, what: str, qbo_id: str | None, qbo_total: Decimal | None, crm_total: Decimal
) -> None:
    if qbo_total is None or pricing.money(qbo_total) != pricing.money(crm_total):
        await ctx.log(
            f"QuickBooks {what} {qbo_id} total {qbo_total} differs from the CRM total {crm_total}",
            level="warning",
            qbo_id=qbo_id,
        )
