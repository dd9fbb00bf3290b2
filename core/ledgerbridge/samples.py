"""Sample events, shaped as real CRM and accounting plugins produce them: for tests and the conformance kit."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ledgerbridge.models import (
    Contact,
    ContactSync,
    FirstInvoicePaid,
    Invoice,
    InvoiceChange,
    InvoiceChangeKind,
    InvoicePaid,
    LineItem,
    Money,
    Payment,
    ReviewRequest,
    TaxRate,
)

_AT = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)


def _usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def sample_contact(email: str = "ada@example.com", name: str = "Ada Lovelace") -> Contact:
    given, _, family = name.partition(" ")
    return Contact(name=name, email=email, given_name=given, family_name=family or None, crm_id="crm-contact-1")


def sample_payment(payment_id: str = "txn-1001") -> Payment:
    line = LineItem(name="Consultation", quantity=Decimal("2"), unit_price=_usd("50.00"))
    return Payment(
        payment_id=payment_id,
        source_kind="order_form",
        payer=sample_contact(),
        lines=(line,),
        subtotal=_usd("100.00"),
        discount=_usd("10.00"),
        tax=_usd("7.20"),
        total=_usd("97.20"),
        paid_at=_AT,
        order_id="order-1001",
        payment_method="card",
        reference="ch_1001",
    )


def sample_invoice(status: str = "sent", invoice_id: str = "inv-2001") -> Invoice:
    tax = TaxRate(name="Sales tax", rate_percent=Decimal("8"))
    lines = (
        LineItem(name="Design", quantity=Decimal("1"), unit_price=_usd("275.00"), taxes=(tax,)),
        LineItem(name="Hosting", quantity=Decimal("3"), unit_price=_usd("4.25"), taxes=(tax,)),
        LineItem(name="Support", quantity=Decimal("1"), unit_price=_usd("47.50"), taxes=(tax,)),
    )
    paid = _usd("362.07") if status == "paid" else _usd("0")
    return Invoice(
        invoice_id=invoice_id,
        number="INV-2001",
        status=status,  # type: ignore[arg-type]
        customer=sample_contact(),
        lines=lines,
        subtotal=_usd("335.25"),
        discount_total=_usd("0"),
        tax_total=_usd("26.82"),
        total=_usd("362.07"),
        amount_paid=paid,
        amount_due=_usd("362.07") - paid,
        created_at=_AT,
    )


def sample_invoice_change(kind: InvoiceChangeKind = "sent", invoice_id: str = "inv-2001") -> InvoiceChange:
    status = {"sent": "sent", "updated": "sent", "paid": "paid", "partially_paid": "partially_paid"}.get(kind, "void")
    return InvoiceChange(kind=kind, invoice=sample_invoice(status, invoice_id), occurred_at=_AT)


def sample_contact_sync(source_id: str = "58") -> ContactSync:
    return ContactSync(kind="imported", contact=sample_contact(), source_id=source_id)


def sample_first_invoice_paid(customer_id: str = "58") -> FirstInvoicePaid:
    return FirstInvoicePaid(
        contact=sample_contact(),
        customer_id=customer_id,
        invoice_id="130",
        invoice_number="1037",
        total=_usd("362.07"),
        paid_at=_AT,
        request=ReviewRequest(
            channel="email",
            subject="How did we do?",
            message="Thanks for your business! Tell us how we did: https://example.com/review",
            link="https://example.com/review",
        ),
    )


def sample_invoice_paid(customer_id: str = "58", invoice_id: str = "130") -> InvoicePaid:
    return InvoicePaid(
        contact=sample_contact(),
        customer_id=customer_id,
        invoice_id=invoice_id,
        invoice_number="1037",
        total=_usd("362.07"),
        paid_at=_AT,
    )
