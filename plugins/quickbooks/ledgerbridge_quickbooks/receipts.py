"""on_payment: a CRM payment becomes one SalesReceipt; each refund of it one RefundReceipt of that refund's money.

Refunds are booked as increments: the payment lists every refund so far, and what is booked never exceeds
their sum, so a running total reported as a refund (30 then 50 refunded so far) books 30 then 20.

A refunded payment on a CRM invoice (`invoice_id`) books no sale (the invoice is the sale, its payment was
applied to it): its refunds are RefundReceipts for the invoice's QuickBooks customer, naming the invoice.
That is how QuickBooks records money returned on a paid invoice: a credit memo can only be applied to an
open balance (a paid invoice has none) and moves no money, while a refund receipt records the money
leaving the deposit account and reverses the income, leaving the invoice paid as it is in the CRM.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

from ledgerbridge import DeliveryContext, LineItem, Money, Payment, Refund, Skip

from . import customers, documents, errors, mapping, markers, names, pricing, wire
from .client import QuickBooksClient, request_id
from .company import US_NON_TAXABLE, CompanySetup
from .invoices import LINK as INVOICE_LINK
from .service import Service

RECEIPT_LINK = "sales_receipt"
REFUND_LINK = "refund_receipt"
REFUNDED_LINK = "refunded"  # CRM payment id → {booked: money booked as refunds so far}
MAX_REF_NUM = 21
MAX_NOTE = 4000


async def on_payment(ctx: DeliveryContext, service: Service, payment: Payment) -> None:
    client = await service.client(ctx)
    setup = await service.company(client)
    key = ctx.idempotency_key
    about = ""
    if payment.invoice_id is not None:
        if not await _refunds_to_book(ctx, payment):
            return  # a repeat: every refund of this invoice payment is in the books
        customer_id, about = await _invoice_of(ctx, client, payment)
    else:
        link = await ctx.get_link(RECEIPT_LINK, payment.payment_id)
        if link is None:
            customer_id = await _create_receipt(ctx, service, client, setup, payment, key)
        else:
            customer_id = str(link.data.get("customer_id", ""))
    await _book_refunds(ctx, service, client, setup, payment, customer_id, about, key)


async def _refunds_to_book(ctx: DeliveryContext, payment: Payment) -> bool:
    booked_link = await ctx.get_link(REFUNDED_LINK, payment.payment_id)
    booked = Decimal(str(booked_link.data.get("booked", "0"))) if booked_link else Decimal(0)
    return sum((r.amount.amount for r in payment.refunds), Decimal(0)) > booked


async def _invoice_of(ctx: DeliveryContext, client: QuickBooksClient, payment: Payment) -> tuple[str, str]:
    """The QuickBooks customer and a description of the invoice a refunded invoice payment was applied to."""
    link = await ctx.get_link(INVOICE_LINK, payment.invoice_id or "")
    if link is None or not link.remote_id:
        raise Skip(f"the refunded payment {payment.payment_id} settled CRM invoice {payment.invoice_id}, "
                   "which is not in QuickBooks")  # fmt: skip
    qbo = await client.read(wire.Invoice, link.remote_id)
    customer_id = qbo.CustomerRef.value if qbo.CustomerRef else ""
    return customer_id, f"on QuickBooks invoice {qbo.DocNumber or qbo.Id}"


async def _book_refunds(
    ctx: DeliveryContext,
    service: Service,
    client: QuickBooksClient,
    setup: CompanySetup,
    payment: Payment,
    customer_id: str,
    about: str,
    key: str,
) -> None:
    if not payment.refunds:
        return
    refunded = sum((r.amount.amount for r in payment.refunds), Decimal(0))
    booked_link = await ctx.get_link(REFUNDED_LINK, payment.payment_id)
    booked = Decimal(str(booked_link.data.get("booked", "0"))) if booked_link else Decimal(0)
    for refund in payment.refunds:
        remaining = refunded - booked
        if remaining <= 0:
            return  # an older report of refunds already booked, or a repeat
        if await ctx.get_link(REFUND_LINK, refund.refund_id) is not None:
            continue
        amount = min(refund.amount.amount, remaining)
        await _create_refund(ctx, service, client, setup, payment, refund, amount, customer_id, about, key)
        booked += amount
        await ctx.put_link(REFUNDED_LINK, payment.payment_id, payment.payment_id, booked=f"{booked:f}")


async def _create_receipt(
    ctx: DeliveryContext, service: Service, client: QuickBooksClient, setup: CompanySetup, payment: Payment, key: str
) -> str:
    totals = pricing.Totals(
        subtotal=payment.subtotal.amount, discount=payment.discount.amount, tax=payment.tax.amount,
        total=payment.total.amount,
    )  # fmt: skip
    for attempt in range(2):
        customer_id = await customers.resolve(ctx, service, client, payment.payer, key)
        refs = await mapping.item_refs(ctx, service, client, setup, payment.lines, key)
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
            DepositToAccountRef=await mapping.deposit_ref(ctx, client),
            PrivateNote=markers.note(markers.marker("payment", payment.payment_id), _note(payment, priced.note)),
            BillEmail=wire.EmailAddress(Address=payment.payer.email) if payment.payer.email else None,
        )
        try:
            created = await markers.create_once(
                ctx, client, receipt, what="payment", local_id=payment.payment_id,
                request_id=request_id(key, "receipt" if attempt == 0 else "receipt-r"),
                batcher=service.batchers.for_client(client),
            )  # fmt: skip
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
        await ctx.record_outcome(
            documents.outcome(service, client, "SalesReceipt", created.Id or "", created.DocNumber)
        )
        return customer_id
    raise AssertionError("unreachable")


async def _create_refund(
    ctx: DeliveryContext,
    service: Service,
    client: QuickBooksClient,
    setup: CompanySetup,
    payment: Payment,
    refund: Refund,
    amount: Decimal,
    customer_id: str,
    about: str,
    key: str,
) -> None:
    if not customer_id:
        customer_id = await customers.resolve(ctx, service, client, payment.payer, key)
    what = f"payment {payment.payment_id}" + (f" {about}" if about else "")
    line = LineItem(
        name=pricing.DEFAULT_ITEM,
        quantity=Decimal(1),
        unit_price=Money(amount=amount, currency=refund.amount.currency),
        description=f"Refund of CRM {what}",
    )
    refs = await mapping.item_refs(ctx, service, client, setup, [line], key)
    totals = pricing.Totals(subtotal=amount, discount=Decimal(0), tax=Decimal(0), total=amount)
    code = US_NON_TAXABLE if setup.us else setup.zero_code
    priced = pricing.fold([line], totals, refs, code, "refund")
    method = await names.payment_method_ref(ctx, service, client, payment.payment_method, key)
    step = "refund-" + hashlib.sha256(refund.refund_id.encode()).hexdigest()[:12]
    body = wire.RefundReceipt(
        CustomerRef=wire.Ref(value=customer_id),
        TxnDate=refund.refunded_at.date(),
        Line=priced.lines,
        TxnTaxDetail=wire.TxnTaxDetail(TotalTax=Decimal(0)) if setup.us else None,
        PaymentMethodRef=method,
        PaymentRefNum=(payment.reference or payment.payment_id)[:MAX_REF_NUM],
        DepositToAccountRef=await mapping.deposit_ref(ctx, client),
        PrivateNote=markers.note(markers.marker("refund", refund.refund_id), f"CRM refund of {what}"),
    )
    created = await markers.create_once(
        ctx, client, body, what="refund", local_id=refund.refund_id, request_id=request_id(key, step)
    )
    await ctx.put_link(
        REFUND_LINK, refund.refund_id, created.Id or "", payment_id=payment.payment_id, amount=f"{amount:f}"
    )
    await _check_total(ctx, "refund receipt", created.Id, created.TotalAmt, amount)
    await ctx.record_outcome(
        documents.outcome(service, client, "RefundReceipt", created.Id or "", created.DocNumber, f"{amount:f} refunded")
    )


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
