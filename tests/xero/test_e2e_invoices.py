"""CRM invoices → Xero ACCREC invoices: sent, edited, paid in part and in full, voided; never touching
invoices this plugin did not create; the first invoice paid in full tells the CRM."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from ledgerbridge import TaxRate

from .conftest import Harness, invoice, line, now


def _invoice(harness: Harness, number: str) -> dict[str, Any]:
    found = [row for row in harness.rows("invoices") if row["InvoiceNumber"] == number]
    assert len(found) == 1, [row["InvoiceNumber"] for row in harness.rows("invoices")]
    return found[0]


async def test_a_sent_crm_invoice_appears_in_xero_with_lines_tax_and_discount_to_the_cent(harness: Harness) -> None:
    await harness.connect()
    vat = (TaxRate(name="State tax", rate_percent=Decimal("6")), TaxRate(name="City tax", rate_percent=Decimal("2.5")))
    lines = (line("Consulting", "3", "120.00", vat), line("Travel", "1", "45.50"))
    # discount 40.50 spread pro rata 35.96 / 4.54; tax on 324.04: 19.44 + 8.10 = 27.54
    await harness.publish(invoice("i-1", "sent", number="1042", lines=lines, discount="40.50", tax="27.54"))
    await harness.settle()
    assert await harness.dead() == []
    xero = _invoice(harness, "1042")
    assert (xero["Type"], xero["Status"]) == ("ACCREC", "AUTHORISED")
    assert xero["Total"] == Decimal("392.54") == xero["AmountDue"]
    assert xero["TotalTax"] == Decimal("27.54") and xero["TotalDiscount"] == Decimal("40.50")
    assert [li["DiscountAmount"] for li in xero["LineItems"]] == [Decimal("35.96"), Decimal("4.54")]
    rates = {r["TaxType"]: r for r in harness.books.tax_rates.values()}
    created = rates[xero["LineItems"][0]["TaxType"]]
    assert created["EffectiveRate"] == Decimal("8.5") and "State tax + City tax" in created["Name"]
    assert xero["LineItems"][1]["TaxType"] == "NONE"
    assert xero["Contact"]["EmailAddress"] == "grace@example.com"


async def test_edits_payments_and_void_follow_the_crm(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="2001"))
    await harness.publish(invoice("i-1", "updated", number="2001", lines=(line("Consulting", "3", "50.00"),)))
    await harness.settle()
    assert _invoice(harness, "2001")["Total"] == Decimal("150.00")
    await harness.publish(invoice("i-1", "partially_paid", number="2001", lines=(line("Consulting", "3", "50.00"),),
                                  paid="60.00"))  # fmt: skip
    await harness.publish(
        invoice("i-1", "paid", number="2001", lines=(line("Consulting", "3", "50.00"),), paid="150.00")
    )
    await harness.settle()
    assert await harness.dead() == []
    xero = _invoice(harness, "2001")
    assert (xero["Status"], xero["AmountPaid"], xero["AmountDue"]) == ("PAID", Decimal("150.00"), Decimal("0"))
    assert sorted(p["Amount"] for p in harness.rows("payments")) == [Decimal("60.00"), Decimal("90.00")]
    assert {p["Account"]["Code"] for p in harness.rows("payments")} == {"090"}
    await harness.publish(
        invoice("i-1", "voided", number="2001", lines=(line("Consulting", "3", "50.00"),), paid="150.00")
    )
    await harness.settle()
    assert await harness.dead() == []
    xero = _invoice(harness, "2001")
    assert xero["Status"] == "VOIDED"  # its payments (ours) were removed first, as Xero requires
    assert {p["Status"] for p in harness.rows("payments")} == {"DELETED"}


async def test_a_payment_is_never_above_what_xero_still_has_open(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="3001"))
    await harness.settle()
    xero = _invoice(harness, "3001")
    await harness.control("POST", f"/invoices/{xero['InvoiceID']}/pay", {"Amount": 30})  # recorded in Xero meanwhile
    await harness.publish(invoice("i-1", "paid", number="3001", paid="100.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert sorted(p["Amount"] for p in harness.rows("payments")) == [Decimal("30"), Decimal("70.00")]
    assert _invoice(harness, "3001")["Status"] == "PAID"


async def test_voiding_an_invoice_paid_by_someone_else_in_xero_dead_letters_with_the_reason(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="3501"))
    await harness.settle()
    xero = _invoice(harness, "3501")
    await harness.control("POST", f"/invoices/{xero['InvoiceID']}/pay", {"Amount": 10})
    await harness.publish(invoice("i-1", "voided", number="3501"))
    await harness.settle()
    [reason] = await harness.dead()
    assert "payment recorded in Xero by someone else" in reason
    assert _invoice(harness, "3501")["Status"] == "AUTHORISED"


async def test_invoices_it_did_not_create_are_never_touched(harness: Harness) -> None:
    await harness.connect()
    contact = await harness.control("POST", "/contacts", {"Name": "Grace Hopper", "EmailAddress": "grace@example.com"})
    own = await harness.control("POST", "/invoices", {"InvoiceNumber": "4001", "Contact": {"ContactID": contact["ContactID"]},
        "LineItems": [{"Description": "Xero-made", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]})  # fmt: skip
    await harness.publish(invoice("i-9", "voided", number="4001"))
    await harness.publish(invoice("i-9", "deleted", number="4001"))
    await harness.settle()
    assert await harness.dead() == []
    assert _invoice(harness, "4001")["Status"] == "AUTHORISED" and own["Total"] == 10
    skipped = await harness.runtime.store.list_deliveries("acme", "skipped")
    assert len(skipped) == 2


async def test_an_invoice_created_before_connecting_is_skipped(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-old", "sent", number="5001", created_at=now() - timedelta(days=3)))
    await harness.settle()
    assert harness.rows("invoices") == []
    assert len(await harness.runtime.store.list_deliveries("acme", "skipped")) == 1


async def test_the_first_invoice_paid_in_full_tells_the_crm_once(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="6001"))
    await harness.publish(invoice("i-2", "sent", number="6002"))
    await harness.settle()
    await harness.publish(invoice("i-2", "paid", number="6002", paid="100.00"))  # not her first invoice
    await harness.settle()
    await harness.webhooks_delivered()
    assert harness.crm.first_paid == []
    await harness.publish(invoice("i-1", "paid", number="6001", paid="100.00"))
    await harness.settle()
    await harness.webhooks_delivered()
    [event] = harness.crm.first_paid
    assert (event.invoice_number, event.total.amount, event.contact.email) == (
        "6001",
        Decimal("100.00"),
        "grace@example.com",
    )


async def test_an_invoice_paid_in_xero_itself_also_tells_the_crm(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="7001"))
    await harness.settle()
    xero = _invoice(harness, "7001")
    await harness.control("POST", f"/invoices/{xero['InvoiceID']}/pay", {})
    await harness.webhooks_delivered()
    assert [e.invoice_number for e in harness.crm.first_paid] == ["7001"]
