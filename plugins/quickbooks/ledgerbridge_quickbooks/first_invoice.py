"""The facts the core's review-request policy needs from QuickBooks.

- `InvoicePaid`, published whenever an invoice is seen paid in full (Balance 0, TotalAmt > 0, not voided),
  once per invoice.
- `is_first_invoice`: the customer's first invoice is the earliest by TxnDate, then Id, voided ones excluded.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from ledgerbridge import AccountContext, InvoicePaid, Money

from . import customers, errors, wire
from .client import QuickBooksClient, quote_value


def _counts(invoice: wire.Invoice) -> bool:
    return not invoice.voided and (invoice.TotalAmt or Decimal(0)) > 0


def _order(invoice: wire.Invoice) -> tuple[date, int, str]:
    identifier = invoice.Id or ""
    numeric = identifier.isascii() and identifier.isdigit() and len(identifier) < 19
    return (invoice.TxnDate or date.max, int(identifier) if numeric else 1 << 60, identifier)


async def check_invoices(ctx: AccountContext, client: QuickBooksClient, invoice_ids: list[str]) -> None:
    for invoice_id in dict.fromkeys(invoice_ids):
        await publish_if_paid(ctx, client, invoice_id)


async def publish_if_paid(ctx: AccountContext, client: QuickBooksClient, invoice_id: str) -> bool:
    """True when the invoice is paid in full (its fact is then published, once per invoice)."""
    try:
        invoice = await client.read(wire.Invoice, invoice_id)
    except errors.NotFoundError:
        return False
    if not _counts(invoice) or invoice.Balance is None or invoice.Balance != 0 or invoice.CustomerRef is None:
        return False
    customer_id = invoice.CustomerRef.value
    customer = await client.read(wire.Customer, customer_id)
    stamp = invoice.MetaData.LastUpdatedTime if invoice.MetaData else None
    fact = InvoicePaid(
        contact=customers.to_contact(customer),
        customer_id=customer_id,
        invoice_id=invoice_id,
        invoice_number=invoice.DocNumber,
        total=Money(amount=invoice.TotalAmt or Decimal(0),
                    currency=invoice.CurrencyRef.value if invoice.CurrencyRef else "USD"),
        paid_at=datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC),
    )  # fmt: skip
    await ctx.publish(fact, external_id=f"invoice-paid:{client.realm_id}:{invoice_id}")
    return True


async def is_first_invoice(client: QuickBooksClient, customer_id: str, invoice_id: str) -> bool:
    rows = await client.query(
        wire.Invoice, f"SELECT * FROM Invoice WHERE CustomerRef = {quote_value(customer_id)} MAXRESULTS 1000"
    )
    eligible = sorted((row for row in rows if _counts(row)), key=_order)
    return bool(eligible) and eligible[0].Id == invoice_id
