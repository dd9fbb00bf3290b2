"""FirstInvoicePaid: a customer's first invoice (earliest TxnDate, then Id; voided ones excluded) is paid in
full (Balance 0, TotalAmt > 0, not voided). Published once per customer ever, only while the toggle is on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from ledgerbridge import AccountContext, FirstInvoicePaid, Money

from . import customers, errors, wire
from .client import QuickBooksClient, quote_value

CLAIM = "first_invoice_paid"


def _counts(invoice: wire.Invoice) -> bool:
    return not invoice.voided and (invoice.TotalAmt or Decimal(0)) > 0


def _order(invoice: wire.Invoice) -> tuple[date, int, str]:
    identifier = invoice.Id or ""
    return (invoice.TxnDate or date.max, int(identifier) if identifier.isdigit() else 1 << 60, identifier)


async def check_invoices(ctx: AccountContext, client: QuickBooksClient, invoice_ids: list[str]) -> None:
    settings = await ctx.settings()
    if not settings.review_requests:
        return
    for invoice_id in dict.fromkeys(invoice_ids):
        await check_invoice(ctx, client, invoice_id)


async def check_invoice(ctx: AccountContext, client: QuickBooksClient, invoice_id: str) -> bool:
    """True when this call published the customer's FirstInvoicePaid."""
    try:
        invoice = await client.read(wire.Invoice, invoice_id)
    except errors.NotFoundError:
        return False
    if not _counts(invoice) or invoice.Balance is None or invoice.Balance != 0 or invoice.CustomerRef is None:
        return False
    customer_id = invoice.CustomerRef.value
    if await ctx.get_link(CLAIM, customer_id) is not None:
        return False
    rows = await client.query(
        wire.Invoice, f"SELECT * FROM Invoice WHERE CustomerRef = {quote_value(customer_id)} MAXRESULTS 1000"
    )
    eligible = sorted((row for row in rows if _counts(row)), key=_order)
    if not eligible or eligible[0].Id != invoice.Id:
        return False
    if not await ctx.claim_once(CLAIM, customer_id, invoice_id=invoice_id):
        return False
    try:
        customer = await client.read(wire.Customer, customer_id)
        stamp = invoice.MetaData.LastUpdatedTime if invoice.MetaData else None
        event = FirstInvoicePaid(
            contact=customers.to_contact(customer),
            customer_id=customer_id,
            invoice_id=invoice_id,
            invoice_number=invoice.DocNumber,
            total=Money(amount=invoice.TotalAmt or Decimal(0),
                        currency=invoice.CurrencyRef.value if invoice.CurrencyRef else "USD"),
            paid_at=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC),
        )  # fmt: skip
        await ctx.publish(event, external_id=f"first-invoice-paid:{client.realm_id}:{customer_id}")
    except BaseException:
        await ctx.delete_link(CLAIM, customer_id)  # not published: let a later change try again
        raise
    await ctx.log(f"first invoice {invoice.DocNumber} paid by QuickBooks customer {customer_id}: review request")
    return True
