"""CRM invoices → Xero ACCREC invoices: created when sent, edited while unpaid, payments into the chosen bank
account, voided (after removing the payments this plugin made). Only invoices this plugin created are touched:
the link table says which."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledgerbridge import DeliveryContext, Invoice, InvoiceChange, PermanentFailure, Skip

from . import contacts, facts, pricing, wire
from .client import XeroClient
from .organisation import OrganisationSetup

if TYPE_CHECKING:
    from .plugin import XeroPlugin

LINK = "invoice"  # CRM invoice id → Xero InvoiceID
PAYMENT_LINK = "invoice_payment"  # Xero PaymentID made by this plugin → Xero InvoiceID
ZERO = Decimal("0")


async def on_invoice_change(ctx: DeliveryContext, plugin: XeroPlugin, change: InvoiceChange) -> None:
    invoice = change.invoice
    link = await ctx.get_link(LINK, invoice.invoice_id)
    if link is None:
        if change.kind in ("voided", "deleted"):
            raise Skip(f"invoice {invoice.number} was never sent to Xero")
        if invoice.status == "draft":
            raise Skip(f"invoice {invoice.number} is a draft")
    client = await plugin.client(ctx)
    setup = await plugin.setup(client)
    if invoice.total.currency != setup.currency:
        raise PermanentFailure(
            f"the Xero organisation keeps its books in {setup.currency}; invoice {invoice.number} "
            f"is in {invoice.total.currency}"
        )
    if link is None:
        xero = await _create(ctx, plugin, client, setup, invoice)
    else:
        xero = _one(await client.get(f"/Invoices/{link.remote_id}"))
        if change.kind in ("voided", "deleted"):
            await _void(ctx, client, xero, invoice)
            return
        if change.kind in ("sent", "updated"):
            xero = await _update(ctx, plugin, client, setup, xero, invoice)
    await _pay(ctx, plugin, client, setup, xero, invoice, (invoice.updated_at or change.occurred_at).date())


def _one(body: bytes) -> wire.XInvoice:
    return wire.invoices.decode(body).Invoices[0]


async def _document(
    ctx: DeliveryContext, plugin: XeroPlugin, client: XeroClient, setup: OrganisationSetup, invoice: Invoice
) -> dict[str, Any]:
    settings = await ctx.settings()
    async with plugin.lock(ctx.account_id, "contact", invoice.customer.normalized_email or invoice.customer.name):
        contact_id = await contacts.resolve(ctx, client, invoice.customer, ctx.idempotency_key)
    priced = await pricing.price(
        client,
        setup,
        invoice.lines,
        invoice.discount_total.amount,
        settings.sales_account_code,
        fallback_total=invoice.total.amount,
        fallback_name=f"Invoice {invoice.number}",
    )
    if priced.total != invoice.total.amount:
        await ctx.log(
            f"invoice {invoice.number}: Xero's lines add up to {priced.total}, the CRM says {invoice.total.amount}",
            level="warning",
        )
    issued = invoice.issue_date or invoice.created_at.date()
    return {
        "Contact": {"ContactID": contact_id},
        "Date": issued.isoformat(),
        "DueDate": (invoice.due_date or issued).isoformat(),
        "Reference": f"CRM {invoice.number}"[:255],
        "LineAmountTypes": "Exclusive",
        "LineItems": priced.lines,
    }


async def _create(
    ctx: DeliveryContext, plugin: XeroPlugin, client: XeroClient, setup: OrganisationSetup, invoice: Invoice
) -> wire.XInvoice:
    body = {
        "Type": "ACCREC",
        "Status": "AUTHORISED",
        "InvoiceNumber": invoice.number[:255],
        **await _document(ctx, plugin, client, setup, invoice),
    }
    xero = _one(await client.put("/Invoices", {"Invoices": [body]}, key=f"{ctx.idempotency_key}:create"))
    await ctx.put_link(LINK, invoice.invoice_id, xero.InvoiceID, number=invoice.number)
    await ctx.log(f"invoice {invoice.number} created in Xero ({xero.Total} {xero.CurrencyCode})")
    return xero


async def _update(
    ctx: DeliveryContext,
    plugin: XeroPlugin,
    client: XeroClient,
    setup: OrganisationSetup,
    xero: wire.XInvoice,
    invoice: Invoice,
) -> wire.XInvoice:
    if xero.Status in ("VOIDED", "DELETED"):
        raise Skip(f"invoice {invoice.number} is {xero.Status.lower()} in Xero")
    body = await _document(ctx, plugin, client, setup, invoice)
    if xero.AmountPaid > 0:
        if xero.Total != invoice.total.amount:
            raise PermanentFailure(
                f"invoice {invoice.number} changed in the CRM but has payments in Xero, which "
                "refuses edits of paid invoices: remove the payments in Xero, then replay"
            )
        return xero
    updated = _one(
        await client.post(
            f"/Invoices/{xero.InvoiceID}",
            {"Invoices": [{"InvoiceID": xero.InvoiceID, **body}]},
            key=f"{ctx.idempotency_key}:update",
        )
    )
    await ctx.log(f"invoice {invoice.number} updated in Xero ({updated.Total})")
    return updated


async def _pay(
    ctx: DeliveryContext,
    plugin: XeroPlugin,
    client: XeroClient,
    setup: OrganisationSetup,
    xero: wire.XInvoice,
    invoice: Invoice,
    paid_on: date,
) -> None:
    owed = min(invoice.amount_paid.amount - xero.AmountPaid, xero.AmountDue)
    if owed <= ZERO or xero.Status != "AUTHORISED":
        return
    settings = await ctx.settings()
    bank = setup.bank_account(settings.bank_account_code)
    body = {
        "Payments": [
            {
                "Invoice": {"InvoiceID": xero.InvoiceID},
                "Account": {"Code": bank.Code},
                "Date": paid_on.isoformat(),  # from the event: a repeated delivery sends the very same request
                "Amount": float(owed),
                "Reference": f"CRM {invoice.number}",
            }
        ]
    }
    made = wire.payments.decode(await client.put("/Payments", body, key=f"{ctx.idempotency_key}:pay")).Payments[0]
    await ctx.put_link(PAYMENT_LINK, made.PaymentID, xero.InvoiceID)
    await ctx.log(f"payment of {owed} recorded in Xero on invoice {invoice.number}")
    after = _one(await client.get(f"/Invoices/{xero.InvoiceID}"))
    await facts.invoice_changed(ctx, client, after)


async def _void(ctx: DeliveryContext, client: XeroClient, xero: wire.XInvoice, invoice: Invoice) -> None:
    if xero.Status in ("VOIDED", "DELETED"):
        return
    for payment in xero.Payments:
        if await ctx.get_link(PAYMENT_LINK, payment.PaymentID) is None:
            raise PermanentFailure(
                f"invoice {invoice.number} has a payment recorded in Xero by someone else: "
                "Xero voids only unpaid invoices, so remove it in Xero, then replay"
            )
    for payment in xero.Payments:
        await client.post(
            f"/Payments/{payment.PaymentID}",
            {"Status": "DELETED"},
            key=f"{ctx.idempotency_key}:unpay:{payment.PaymentID}",
        )
    status = "DELETED" if xero.Status in ("DRAFT", "SUBMITTED") else "VOIDED"
    await client.post(
        f"/Invoices/{xero.InvoiceID}",
        {"Invoices": [{"InvoiceID": xero.InvoiceID, "Status": status}]},
        key=f"{ctx.idempotency_key}:void",
    )
    await ctx.log(f"invoice {invoice.number} {status.lower()} in Xero")
