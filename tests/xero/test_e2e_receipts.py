"""CRM payments → Xero received money (RECEIVE bank transactions), contacts matched or created."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from ledgerbridge import Money, Refund, TaxRate
from ledgerbridge.outcomes import outcome_of

from .conftest import Harness, line, payment


async def test_a_crm_payment_appears_in_xero_as_received_money_with_a_new_contact(harness: Harness) -> None:
    await harness.connect()
    sales_tax = (TaxRate(name="Sales Tax", rate_percent=Decimal("8.25")),)
    lines = (line("Course", "2", "60.00", sales_tax), line("Workbook", "1", "15.50"))
    await harness.publish(payment("p-1", lines=lines, discount="13.55", tax="8.91"))
    await harness.settle()
    assert await harness.dead() == []
    [received] = harness.rows("bank_transactions")
    assert received["Type"] == "RECEIVE" and received["BankAccount"]["Code"] == "090"
    assert received["Total"] == Decimal("130.86")  # 135.50 − 13.55 + 8.91, to the cent
    assert received["TotalTax"] == Decimal("8.91")
    [contact] = harness.rows("contacts")
    assert (contact["Name"], contact["EmailAddress"]) == ("Ada Lovelace", "ada@example.com")
    assert received["Contact"]["ContactID"] == contact["ContactID"]
    # a repeated delivery books nothing more
    await harness.publish(payment("p-1", lines=lines, discount="13.55", tax="8.91"))
    await harness.settle()
    assert len(harness.rows("bank_transactions")) == 1


async def test_an_existing_xero_contact_is_matched_by_email_whatever_its_case(harness: Harness) -> None:
    await harness.connect()
    existing = await harness.control("POST", "/contacts", {"Name": "A. Lovelace", "EmailAddress": "ADA@example.com"})
    await harness.publish(payment("p-2", total="50.00"))
    await harness.settle()
    assert await harness.dead() == []
    [received] = harness.rows("bank_transactions")
    assert received["Contact"]["ContactID"] == existing["ContactID"]
    assert len(harness.rows("contacts")) == 1


async def test_a_name_already_used_by_another_contact_gets_the_email_added(harness: Harness) -> None:
    await harness.connect()
    await harness.control("POST", "/contacts", {"Name": "Ada Lovelace", "EmailAddress": "someone-else@example.com"})
    await harness.publish(payment("p-3", total="20.00"))
    await harness.settle()
    assert await harness.dead() == []
    names = sorted(c["Name"] for c in harness.rows("contacts"))
    assert names == ["Ada Lovelace", "Ada Lovelace (ada@example.com)"]


async def test_invoice_and_payment_setting_books_a_paid_invoice(harness: Harness) -> None:
    await harness.connect()
    ctx = await harness.runtime.plugin_context("xero").account("acme")
    assert ctx is not None
    await ctx.update_settings(payments_as="invoice_and_payment", bank_account_code="091")
    await harness.publish(payment("p-4", lines=(line("Session", "1", "80.00"),)))
    await harness.settle()
    assert await harness.dead() == []
    [invoice] = harness.rows("invoices")
    assert (invoice["Status"], invoice["Total"], invoice["AmountDue"]) == ("PAID", Decimal("80.00"), Decimal("0"))
    [paid] = harness.rows("payments")
    assert paid["Account"]["Code"] == "091"
    assert harness.rows("bank_transactions") == []


async def test_a_crm_refund_appears_in_xero_as_money_spent_with_its_tax_reversed(harness: Harness) -> None:
    await harness.connect()
    sales_tax = (TaxRate(name="Sales Tax", rate_percent=Decimal("8.25")),)
    lines = (line("Course", "1", "100.00", sales_tax), line("Workbook", "1", "20.00"))
    sale = payment("p-9", lines=lines, tax="8.25")  # 128.25 paid
    await harness.publish(sale)
    await harness.settle()
    refund = Refund(refund_id="r-1", amount=Money(amount=Decimal("64.13"), currency="USD"), refunded_at=sale.paid_at)
    refunded = msgspec.structs.replace(sale, refunds=(refund,))
    await harness.publish(refunded)
    await harness.publish(refunded)  # the CRM tells us twice: booked once
    await harness.settle()
    assert await harness.dead() == []
    spent = [t for t in harness.rows("bank_transactions") if t["Type"] == "SPEND"]
    assert len(spent) == 1
    assert spent[0]["Total"] == Decimal("64.13") and spent[0]["LineAmountTypes"] == "Inclusive"
    assert spent[0]["TotalTax"] > 0 and spent[0]["BankAccount"]["Code"] == "090"
    assert len([t for t in harness.rows("bank_transactions") if t["Type"] == "RECEIVE"]) == 1


async def test_payments_before_xero_is_connected_are_skipped_with_the_reason(harness: Harness) -> None:
    await harness.publish(payment("p-0", total="10.00"))
    await harness.settle()
    [skipped] = await harness.runtime.store.list_deliveries("acme", "skipped")
    assert "not connected" in (skipped.last_error or "")
    assert all(not org.bank_transactions for org in harness.sandbox.organisations.values())


async def test_failures_and_lost_replies_still_book_each_payment_exactly_once(harness: Harness) -> None:
    await harness.connect()
    faults = f"{harness.url}/sandbox/xero/control/faults"
    assert (await harness.http.post(faults, json={"status": 429, "count": 1, "retry_after": 1})).status_code == 200
    assert (await harness.http.post(faults, json={"status": 503, "count": 2})).status_code == 200
    # every following call is carried out, then its reply is lost: only Idempotency-Key prevents doubles
    assert (await harness.http.post(faults, json={"status": 503, "count": 8, "after_commit": True})).status_code == 200
    await harness.publish(payment("p-f", lines=(line("Course", "1", "70.00"),)))
    await harness.settle(timeout=30)
    assert await harness.dead() == []
    assert len(harness.rows("bank_transactions")) == 1 and len(harness.rows("contacts")) == 1
    assert harness.rows("bank_transactions")[0]["Total"] == Decimal("70.00")
    assert harness.sandbox.faults == []
    assert 1.0 in harness.xero.limiters.for_realm(harness.tenant_id).waits  # type: ignore[attr-defined]  # Retry-After honoured


async def test_activity_links_each_payment_to_its_row_on_the_sandboxs_organisation_page(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-9", total="42.00"))
    await harness.settle()
    outcomes = [o for e in await harness.runtime.store.list_activity("acme", 500) if (o := outcome_of(e.data))]
    [received] = harness.rows("bank_transactions")
    [said] = outcomes
    assert said.document == "Xero received money"
    assert (
        said.url
        == f"{harness.url}/sandbox/xero/organisations/{harness.tenant_id}#bank_transaction-"
        + (received["BankTransactionID"])
    )
    page = await harness.http.get(said.url.split("#")[0])
    assert f"id='bank_transaction-{received['BankTransactionID']}'" in page.text
