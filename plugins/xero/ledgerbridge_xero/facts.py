"""The facts the core's review-request policy needs: is this the customer's first invoice, and publishing
that a first invoice was paid in full. Kept apart so the switch to the core's InvoicePaid model is one file."""

from __future__ import annotations

from datetime import UTC, datetime

from ledgerbridge import AccountContext, Contact, FirstInvoicePaid, Money

from . import wire
from .client import XeroClient

CLAIM = "first_invoice_paid"  # one review request per Xero contact, ever
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
    """Publish the fact when a customer's first invoice is paid in full; True when published."""
    if invoice.Type != "ACCREC" or invoice.Status != "PAID":
        return False
    settings = await ctx.settings()
    if not settings.review_requests:
        return False
    customer_id = invoice.Contact.ContactID
    if not await is_first_invoice(client, customer_id, invoice.InvoiceID):
        return False
    if not await ctx.claim_once(CLAIM, customer_id, invoice_id=invoice.InvoiceID):
        return False
    found = wire.contacts.decode(await client.get(f"/Contacts/{customer_id}")).Contacts
    person = found[0] if found else None
    contact = Contact(
        name=(person.Name if person else invoice.Contact.Name) or "Customer",
        email=person.EmailAddress if person else None,
        accounting_id=customer_id,
    )
    paid_at = wire.parse_msdate(invoice.FullyPaidOnDate) or datetime.now(UTC)
    event = FirstInvoicePaid(
        contact=contact,
        customer_id=customer_id,
        invoice_id=invoice.InvoiceID,
        invoice_number=invoice.InvoiceNumber or None,
        total=Money(amount=invoice.Total, currency=invoice.CurrencyCode),
        paid_at=paid_at,
    )
    await ctx.publish(event, external_id=f"xero-first-paid:{customer_id}")
    return True
