"""CRM payments → Xero. By default a "receive money" bank transaction (RECEIVE) into the chosen bank account:
money that arrived without an invoice to settle, which is what it is. The alternative setting books an
ACCREC invoice and a payment against it, for accountants who want every sale in receivables reports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledgerbridge import DeliveryContext, Payment, PermanentFailure, Refund

from . import contacts, pricing, wire

if TYPE_CHECKING:
    from .plugin import XeroPlugin

LINK = "payment"  # CRM payment id → Xero BankTransactionID (or InvoiceID with the alternative setting)
REFUND_LINK = "refund"  # CRM refund id → Xero BankTransactionID (SPEND)


async def on_payment(ctx: DeliveryContext, plugin: XeroPlugin, payment: Payment) -> None:
    if await ctx.get_link(LINK, payment.payment_id) is None:
        await _book(ctx, plugin, payment)
    for refund in payment.refunds:
        if await ctx.get_link(REFUND_LINK, refund.refund_id) is None:
            await _refund(ctx, plugin, payment, refund)


async def _book(ctx: DeliveryContext, plugin: XeroPlugin, payment: Payment) -> None:
    client = await plugin.client(ctx)
    setup = await plugin.setup(client)
    settings = await ctx.settings()
    if payment.total.currency != setup.currency:
        raise PermanentFailure(
            f"the Xero organisation keeps its books in {setup.currency}; this payment is in {payment.total.currency}"
        )
    bank = setup.bank_account(settings.bank_account_code)
    async with plugin.lock(ctx.account_id, "contact", payment.payer.normalized_email or payment.payer.name):
        contact_id = await contacts.resolve(ctx, client, payment.payer, ctx.idempotency_key)
    priced = await pricing.price(
        client,
        setup,
        payment.lines,
        payment.discount.amount,
        settings.sales_account_code,
        fallback_total=payment.total.amount,
        fallback_name=f"CRM payment {payment.reference or payment.payment_id}",
    )
    if priced.total != payment.total.amount:
        await ctx.log(
            f"payment {payment.payment_id}: Xero's lines add up to {priced.total}, the CRM says {payment.total.amount}",
            level="warning",
        )
    day = payment.paid_at.date().isoformat()
    # the processor's reference matches the bank feed line; the CRM id finds the payment again
    crm = f"CRM payment {payment.payment_id}"
    reference = (f"{payment.reference} ({crm})" if payment.reference else crm)[:255]
    if settings.payments_as == "invoice_and_payment":
        invoice_id = await _invoice_and_payment(
            ctx, client, contact_id, priced, bank.Code or "", day, reference, payment
        )
        await ctx.put_link(LINK, payment.payment_id, invoice_id, document="invoice")
        return
    body: dict[str, Any] = {
        "BankTransactions": [
            {
                "Type": "RECEIVE",
                "Contact": {"ContactID": contact_id},
                "BankAccount": {"Code": bank.Code},
                "Date": day,
                "Reference": reference,
                "LineAmountTypes": "Exclusive",
                "LineItems": priced.lines,
            }
        ]
    }
    made = wire.bank_transactions.decode(
        await client.put("/BankTransactions", body, key=f"{ctx.idempotency_key}:receive")
    )
    transaction = made.BankTransactions[0]
    await ctx.put_link(LINK, payment.payment_id, transaction.BankTransactionID, document="bank_transaction")
    await ctx.log(f"payment {payment.payment_id} booked in Xero as received money ({transaction.Total})")


async def _invoice_and_payment(
    ctx: DeliveryContext,
    client: Any,
    contact_id: str,
    priced: pricing.Priced,
    bank_code: str,
    day: str,
    reference: str,
    payment: Payment,
) -> str:
    body = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact_id},
                "Date": day,
                "DueDate": day,
                "Reference": reference,
                "Status": "AUTHORISED",
                "LineAmountTypes": "Exclusive",
                "LineItems": priced.lines,
            }
        ]
    }
    invoice = wire.invoices.decode(await client.put("/Invoices", body, key=f"{ctx.idempotency_key}:invoice")).Invoices[
        0
    ]
    if invoice.AmountDue > 0:
        pay = {
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice.InvoiceID},
                    "Account": {"Code": bank_code},
                    "Date": day,
                    "Amount": float(invoice.AmountDue),
                    "Reference": reference,
                }
            ]
        }
        await client.put("/Payments", pay, key=f"{ctx.idempotency_key}:payment")
    await ctx.log(f"payment {payment.payment_id} booked in Xero as invoice {invoice.InvoiceNumber}, paid")
    return invoice.InvoiceID


async def _refund(ctx: DeliveryContext, plugin: XeroPlugin, payment: Payment, refund: Refund) -> None:
    """A refund is money spent from the same bank account (SPEND): the payment's lines scaled to the refund,
    tax-inclusive, so the refund's tax is reversed at each line's rate and the total is the refund to the cent."""
    client = await plugin.client(ctx)
    setup = await plugin.setup(client)
    settings = await ctx.settings()
    bank = setup.bank_account(settings.bank_account_code)
    async with plugin.lock(ctx.account_id, "contact", payment.payer.normalized_email or payment.payer.name):
        contact_id = await contacts.resolve(ctx, client, payment.payer, ctx.idempotency_key)
    priced = await pricing.price(
        client, setup, payment.lines, payment.discount.amount, settings.sales_account_code,
        fallback_total=payment.total.amount, fallback_name=f"CRM payment {payment.reference or payment.payment_id}",
    )  # fmt: skip
    lines = pricing.refund_lines(priced, refund.amount.amount, f"Refund of {payment.reference or payment.payment_id}")
    body: dict[str, Any] = {"BankTransactions": [{
        "Type": "SPEND", "Contact": {"ContactID": contact_id}, "BankAccount": {"Code": bank.Code},
        "Date": refund.refunded_at.date().isoformat(), "Reference": f"Refund {refund.refund_id}"[:255],
        "LineAmountTypes": "Inclusive", "LineItems": lines,
    }]}  # fmt: skip
    key = f"{ctx.idempotency_key}:refund:{refund.refund_id}"
    made = wire.bank_transactions.decode(await client.put("/BankTransactions", body, key=key)).BankTransactions[0]
    await ctx.put_link(REFUND_LINK, refund.refund_id, made.BankTransactionID, payment_id=payment.payment_id)
    await ctx.log(
        f"refund {refund.refund_id} of payment {payment.payment_id} booked in Xero as money spent ({made.Total})"
    )
