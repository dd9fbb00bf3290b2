"""CRM invoice webhooks become InvoiceChanges with the invoice's full state."""

from __future__ import annotations

from decimal import Decimal

from ledgerbridge import InvoiceChange

from tests.crmconnect.conftest import Stack

ITEMS = [
    {"name": "Design", "qty": 2, "amount": 100, "taxes": [{"name": "Sales tax", "rate": 10}]},
    {"name": "Hosting", "qty": 1, "amount": 50},
]


async def test_sent_updated_partially_paid_paid_and_voided(stack: Stack) -> None:
    contact = await stack.contact("billing@example.com")
    invoice = await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": ITEMS, "send": True})
    invoice_id = invoice["_id"]
    await stack.wait_for("on_invoice_change", 1)
    await stack.control("PUT", f"/invoices/{invoice_id}", {"discount": {"type": "fixed", "value": 20}})
    await stack.wait_for("on_invoice_change", 2)
    await stack.control("POST", f"/invoices/{invoice_id}/pay", {"amount": 100})
    await stack.wait_for("on_invoice_change", 3)
    await stack.control("POST", f"/invoices/{invoice_id}/pay", {})
    await stack.wait_for("on_invoice_change", 4)
    other = await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": ITEMS, "send": True})
    await stack.wait_for("on_invoice_change", 5)
    await stack.control("POST", f"/invoices/{other['_id']}/void")
    await stack.wait_for("on_invoice_change", 6)
    await stack.settle()

    changes: list[InvoiceChange] = stack.calls("on_invoice_change")
    assert [c.kind for c in changes] == ["sent", "updated", "partially_paid", "paid", "sent", "voided"]
    sent, updated, partial, paid, _, voided = changes
    assert sent.invoice.status == "sent"
    assert sent.invoice.customer.email == "billing@example.com"
    assert [line.name for line in sent.invoice.lines] == ["Design", "Hosting"]
    assert sent.invoice.subtotal.amount == Decimal("250")
    assert sent.invoice.tax_total.amount == Decimal("20")
    assert sent.invoice.total.amount == Decimal("270")
    assert updated.invoice.discount is not None and updated.invoice.discount.kind == "fixed"
    assert updated.invoice.discount_total.amount == Decimal("20")
    assert partial.invoice.status == "partially_paid"
    assert partial.invoice.amount_paid.amount == Decimal("100")
    assert paid.invoice.status == "paid"
    assert paid.invoice.amount_due.amount == Decimal("0")
    assert paid.invoice.amount_paid.amount == paid.invoice.total.amount
    assert voided.invoice.status == "void"
    assert voided.invoice.invoice_id == other["_id"]
    assert stack.calls("on_payment") == []  # invoice payments are not sales receipts


def test_a_payment_still_processing_leaves_the_invoice_open_in_the_books_words() -> None:
    import msgspec
    from ledgerbridge import InvoiceChange, decode_event, encode_event
    from ledgerbridge_crmconnect.wire import InvoiceWire

    wire = msgspec.json.decode(msgspec.json.encode(
        {"_id": "inv-9", "invoiceNumber": "1009", "status": "payment_processing", "currency": "USD",
         "contactDetails": {"name": "Ada", "email": "ada@example.com"}, "invoiceItems": [], "total": 0,
         "createdAt": "2026-11-01T10:00:00.000Z"}), type=InvoiceWire,
    )  # fmt: skip
    invoice = wire.to_domain()
    assert invoice.status == "sent"
    change = InvoiceChange(kind="updated", invoice=invoice, occurred_at=invoice.created_at)
    assert decode_event(encode_event(change)) == change  # what the inbox stores can be read back
