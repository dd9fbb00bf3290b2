"""The facts the core's review-request policy needs from Xero: `InvoicePaid` whenever a sales invoice is
seen paid in full (once per invoice, whoever created it), and `is_first_invoice`."""

from __future__ import annotations

from datetime import UTC, datetime

from ledgerbridge import AccountContext, Contact, InvoicePaid, Money

from . import wire
from .client import XeroClient

LIVE = "DRAFT,SUBMITTED,AUTHORISED,PAID"


async def is_first_invoice(client: XeroClient, customer_id: str, invoice_id: str) -> bool:
    """The customer's earliest non-voided ACCREC invoice (by date, then number) is this one."""
    params = {"ContactIDs": customer_id, "Statuses": LIVE, "where": 'Type=="ACCREC"', "order": "Date ASC"}
    found = wire.invoices.decode(await client.get("/Invoices", params=params)).Invoices
    mine = [i for i in found if i.Type == "ACCREC" and i.Contact.ContactID.lower() == customer_id.lower()]
    if not mine:
        return False
    earliest = min(mine, key=lambda i: (i.day or datetime.max.date(), i.InvoiceNumber))
    return earliest.InvoiceID.lower() == invoice_id.lower()


async def invoice_changed(ctx: AccountContext, client: XeroClient, invoice: wire.XInvoice) -> bool:
    """Publish `InvoicePaid` when a sales invoice is paid in full; True when it is."""
    if invoice.Type != "ACCREC" or invoice.Status != "PAID" or invoice.Total <= 0:
        return False
    customer_id = invoice.Contact.ContactID
    found = wire.contacts.decode(await client.get(f"/Contacts/{customer_id}")).Contacts
    person = found[0] if found else None
    contact = Contact(
        name=(person.Name if person else invoice.Contact.Name) or "Customer",
        email=person.EmailAddress if person else None,
        accounting_id=customer_id,
    )
    fact = InvoicePaid(
        contact=contact,
        customer_id=customer_id,
        invoice_id=invoice.InvoiceID,
        invoice_number=invoice.InvoiceNumber or None,
        total=Money(amount=invoice.Total, currency=invoice.CurrencyCode),
        paid_at=wire.parse_msdate(invoice.FullyPaidOnDate) or datetime.now(UTC),
    )
    await ctx.publish(fact, external_id=f"invoice-paid:{client.tenant_id}:{invoice.InvoiceID}")
    return True
