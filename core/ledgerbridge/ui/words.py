"""An event said in business words, from its model: "Payment $198.50 · Grace Hopper · order form"."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledgerbridge.models import (
    ContactSync,
    Event,
    FirstInvoicePaid,
    InvoiceChange,
    InvoicePaid,
    Money,
    Notification,
    Payment,
)

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$"}
INVOICE_STEPS = {
    "sent": "sent",
    "updated": "edited",
    "partially_paid": "paid in part",
    "paid": "paid",
    "voided": "voided",
    "deleted": "deleted",
}
KIND_LABELS = {
    "payment": "Payments",
    "invoice_change": "Invoices",
    "contact_sync": "Contacts",
    "invoice_paid": "Invoices paid in the books",
    "first_invoice_paid": "Review requests",
    "notification": "Routine checks",
}


@dataclass(frozen=True)
class EventWords:
    #: "Payment $198.50", "Invoice INV-1004 sent"
    headline: str
    #: who it is about: "Grace Hopper"
    customer: str | None
    #: more about it: "order form", "total $300.00, balance $0.00"
    detail: str | None
    #: the object the event is about, for a timeline's title: "Invoice INV-1004"
    subject: str
    #: this event as one step of the object's history: "sent", "paid $300.00, balance $0.00"
    step: str

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(part for part in (self.headline, self.customer, self.detail) if part)


def money(value: Money) -> str:
    """$1,234.50; cents always shown, finer amounts kept; a currency without a known symbol by its code."""
    cents = value.amount.quantize(Decimal("0.01"))
    amount = f"{cents if cents == value.amount else value.amount:,}"
    symbol = SYMBOLS.get(value.currency.upper())
    return f"{symbol}{amount}" if symbol else f"{amount} {value.currency}"


def describe(event: Event) -> EventWords:
    if isinstance(event, Payment):
        return _payment(event)
    if isinstance(event, InvoiceChange):
        return _invoice_change(event)
    if isinstance(event, ContactSync):
        name = event.contact.name or event.contact.email or "a contact"
        step = "merged" if event.merged_into else event.kind
        return EventWords(f"Contact {step}", name, event.contact.email, f"Contact {name}", step)
    if isinstance(event, InvoicePaid):
        number = event.invoice_number or event.invoice_id
        return EventWords(
            f"Invoice {number} paid in the books", event.contact.name, money(event.total), f"Invoice {number}",
            f"paid in full in the books ({money(event.total)})",
        )  # fmt: skip
    if isinstance(event, FirstInvoicePaid):
        number = event.invoice_number or event.invoice_id
        channel = f"by {event.request.channel}" if event.request else None
        return EventWords(
            "Review request", event.contact.name, channel, f"Review request to {event.contact.name}",
            f"asked after first invoice {number} was paid",
        )  # fmt: skip
    if isinstance(event, Notification):
        what = event.kind.replace("_", " ")
        return EventWords(f"Routine check: {what}", None, None, f"Check {event.object_key}", what)
    name = type(event).__name__
    return EventWords(name, None, None, f"{name} {event.object_key}", name)


def _payment(payment: Payment) -> EventWords:
    kind = payment.source_kind.replace("_", " ")
    refunded = sum((r.amount.amount for r in payment.refunds), Decimal(0))
    detail = kind
    step = f"paid {money(payment.total)}"
    if refunded:
        back = money(Money(amount=refunded, currency=payment.total.currency))
        detail += f", {back} refunded"
        step += f", {back} refunded"
    return EventWords(
        f"Payment {money(payment.total)}", payment.payer.name or payment.payer.email, detail,
        f"Payment {money(payment.total)} from {payment.payer.name or payment.payer.email or 'a customer'}", step,
    )  # fmt: skip


def _invoice_change(change: InvoiceChange) -> EventWords:
    invoice = change.invoice
    verb = INVOICE_STEPS.get(change.kind, change.kind.replace("_", " "))
    balance = f"balance {money(invoice.amount_due)}"
    if change.kind in ("paid", "partially_paid"):
        step = f"paid {money(invoice.amount_paid)}, {balance}"
    elif change.kind == "sent":
        step = f"sent, total {money(invoice.total)}"
    else:
        step = verb
    return EventWords(
        f"Invoice {invoice.number} {verb}", invoice.customer.name, f"total {money(invoice.total)}, {balance}",
        f"Invoice {invoice.number}", step,
    )  # fmt: skip
