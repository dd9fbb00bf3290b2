"""The books are never wrong: refunds as increments, no duplicates at any age, foreign documents untouched,
invoice changes in any order. End to end through the server, the pipeline and the QuickBooks sandbox."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import msgspec
from ledgerbridge import Refund
from msgspec.structs import replace as with_fields

from .conftest import Harness, invoice, line, now, payment, usd


def _amounts(rows: list[dict[str, Any]]) -> list[Decimal]:
    return [Decimal(str(r["TotalAmt"])) for r in sorted(rows, key=lambda r: int(r["Id"]))]


def _refund(refund_id: str, amount: str, minutes: int = 1) -> Refund:
    return Refund(refund_id=refund_id, amount=usd(amount), refunded_at=now() + timedelta(minutes=minutes))


async def test_partial_refunds_of_30_then_20_on_100_book_refund_receipts_of_30_and_20(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-1", total="100.00"))
    await harness.settle()
    first = _refund("p-1:refunded:30", "30.00")
    second = _refund("p-1:refunded:50", "20.00", minutes=2)
    await harness.publish(payment("p-1", total="100.00", refunds=(first,)), external_id="p-1:refunded:30")
    await harness.publish(payment("p-1", total="100.00", refunds=(first, second)), external_id="p-1:refunded:50")
    await harness.publish(payment("p-1", total="100.00", refunds=(first,)), external_id="p-1:refunded:30-again")
    await harness.settle()
    assert await harness.dead() == []
    assert _amounts(harness.rows("SalesReceipt")) == [Decimal("100.00")]
    assert _amounts(harness.rows("RefundReceipt")) == [Decimal("30.00"), Decimal("20.00")]


async def test_a_refund_reported_as_a_running_total_books_only_the_new_money(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-1", total="100.00"))
    await harness.publish(payment("p-1", total="100.00", refunds=(_refund("r-30", "30.00"),)), external_id="r-30")
    await harness.settle()
    # a producer that reports "50 refunded so far" as one refund: 20 of it is new money
    await harness.publish(payment("p-1", total="100.00", refunds=(_refund("r-50", "50.00", 2),)), external_id="r-50")
    await harness.settle()
    assert await harness.dead() == []
    assert _amounts(harness.rows("RefundReceipt")) == [Decimal("30.00"), Decimal("20.00")]


async def test_a_refunded_invoice_payment_is_a_refund_receipt_for_the_invoice_customer(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="7001"))
    await harness.publish(invoice("i-1", "paid", number="7001", paid="100.00"))
    await harness.settle()
    paid_on_invoice = with_fields(
        payment("txn-inv", email="grace@example.com", name="Grace Hopper", total="100.00"),
        invoice_id="i-1", refunds=(_refund("txn-inv:refunded:40", "40.00"),),
    )  # fmt: skip
    await harness.publish(paid_on_invoice, external_id="txn-inv:refunded:40")
    await harness.settle()
    assert await harness.dead() == []
    assert harness.rows("SalesReceipt") == []  # the sale is the invoice, never a second one
    (qbo_invoice,) = harness.rows("Invoice")
    assert Decimal(str(qbo_invoice["Balance"])) == 0  # still paid, as in the CRM
    (refund,) = harness.rows("RefundReceipt")
    assert Decimal(str(refund["TotalAmt"])) == Decimal("40.00")
    assert refund["CustomerRef"]["value"] == qbo_invoice["CustomerRef"]["value"]
    assert "invoice 7001" in refund["PrivateNote"]


async def test_a_lost_reply_retried_after_the_requestid_window_yields_one_document(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-0", total="1.00"))  # customer and item exist first
    await harness.settle()
    harness.service.limits = replace(harness.service.limits, max_attempts=1)  # the delivery itself retries
    harness.sandbox.config.requestid_ttl_seconds = 0  # Intuit has forgotten the requestid by then
    harness.sandbox.faults.drop_writes = 1  # committed, but the reply never arrives
    await harness.publish(payment("p-1", total="25.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.sandbox.faults.drop_writes == 0
    assert _amounts(harness.rows("SalesReceipt")) == [Decimal("1.00"), Decimal("25.00")]
    assert any("found by its marker, not created again" in m for m in await harness.activity())


async def test_a_foreign_invoice_with_the_same_number_is_left_untouched(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-0", "sent", number="0"))  # Grace exists as a customer
    await harness.settle()
    books = harness.sandbox.books(harness.realm)
    grace = next(c for c in harness.rows("Customer") if c["DisplayName"] == "Grace Hopper")
    other = books.create("Customer", {"DisplayName": "Someone Else"})
    lines = [{"DetailType": "SalesItemLineDetail", "Amount": 5, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}]
    mine = books.create("Invoice", {"DocNumber": "8001", "CustomerRef": {"value": grace["Id"]}, "Line": lines})
    theirs = books.create("Invoice", {"DocNumber": "8002", "CustomerRef": {"value": other["Id"]}, "Line": lines})
    before = {r["Id"]: msgspec.json.encode(r) for r in (mine, theirs)}
    await harness.publish(invoice("i-1", "sent", number="8001"))
    await harness.publish(invoice("i-2", "sent", number="8002"))
    await harness.publish(invoice("i-1", "updated", number="8001", tax="5.00"))
    await harness.publish(invoice("i-2", "voided", number="8002"))
    await harness.settle()
    assert await harness.dead() == []
    rows = {r["Id"]: r for r in harness.rows("Invoice")}
    assert {i: msgspec.json.encode(rows[i]) for i in before} == before  # not a byte changed
    replicas = {r["DocNumber"]: r for r in rows.values() if r["Id"] not in before and r["DocNumber"] != "0"}
    assert set(replicas) == {"8001-CRM", "8002-CRM"}
    assert Decimal(str(replicas["8001-CRM"]["TotalAmt"])) == Decimal("105.00")
    assert replicas["8002-CRM"]["TotalAmt"] == 0 and replicas["8002-CRM"]["PrivateNote"].startswith("Voided")
    activity = "\n".join(await harness.activity())
    assert "already has an invoice numbered 8001 (for the same customer)" in activity
    assert "copied as 8002-CRM" in activity


async def test_a_void_before_its_sent_leaves_the_invoice_voided(harness: Harness) -> None:
    await harness.connect()
    sent = invoice("i-1", "sent", number="9001")
    voided = with_fields(invoice("i-1", "voided", number="9001"), occurred_at=sent.occurred_at + timedelta(seconds=5))
    await harness.publish(voided)
    await harness.settle()
    assert harness.rows("Invoice") == []  # held: nothing to void yet
    await harness.publish(sent)
    await harness.settle()
    assert await harness.dead() == []
    (qbo,) = harness.rows("Invoice")
    assert qbo["DocNumber"] == "9001" and qbo["TotalAmt"] == 0 and qbo["PrivateNote"].startswith("Voided")


async def test_a_stale_sent_after_paid_changes_nothing(harness: Harness) -> None:
    await harness.connect()
    sent = invoice("i-1", "sent", number="9101")
    paid = with_fields(invoice("i-1", "paid", number="9101", paid="100.00"),
                   occurred_at=sent.occurred_at + timedelta(seconds=5))  # fmt: skip
    await harness.publish(paid)
    await harness.publish(sent)
    await harness.settle()
    assert await harness.dead() == []
    (qbo,) = harness.rows("Invoice")
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("100.00") and Decimal(str(qbo["Balance"])) == 0
    assert _amounts(harness.rows("Payment")) == [Decimal("100.00")]
    assert any("older than the one applied" in m for m in await harness.activity())


async def test_a_quickbooks_uniqueness_suffix_never_reaches_the_crm(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-1", email="sam@example.com", name="Sam Same", total="5.00"))
    await harness.publish(payment("p-2", email="sam.b@example.com", name="Sam Same", total="6.00"))
    await harness.settle()
    names = sorted(c["DisplayName"] for c in harness.rows("Customer"))
    assert names[0] == "Sam Same" and names[1].startswith("Sam Same (sam")  # unique in QuickBooks, as it must be
    ids = {c["Id"] for c in harness.rows("Customer")}
    await harness.until(lambda: ids <= {s.source_id for s in harness.crm.contacts})
    assert {s.contact.name for s in harness.crm.contacts if s.source_id in ids} == {"Sam Same"}


async def _settings(harness: Harness, **changes: Any) -> None:
    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    await ctx.update_settings(**changes)


def _sales_items(row: dict[str, Any]) -> list[str]:
    return [
        li["SalesItemLineDetail"]["ItemRef"]["value"] for li in row["Line"] if li["DetailType"] == "SalesItemLineDetail"
    ]


async def test_receipts_use_the_deposit_account_income_account_and_default_item_the_settings_choose(
    harness: Harness,
) -> None:
    await harness.connect()
    await _settings(harness, deposit_account="Checking", income_account="Sales of Product Income",
                    item_mapping="default", default_item="CRM sales")  # fmt: skip
    lines = (line("Workshop seat", "2", "30.00"), line("Handbook", "1", "20.00"))
    await harness.publish(payment("p-1", lines=lines))
    await harness.publish(payment("p-1", lines=lines, refunds=(_refund("p-1:refunded:20", "20.00"),)), "p-1-r")
    await harness.settle()
    assert await harness.dead() == []
    accounts = {a["Name"]: a["Id"] for a in harness.rows("Account")}
    (receipt,) = harness.rows("SalesReceipt")
    (refund,) = harness.rows("RefundReceipt")
    assert receipt["DepositToAccountRef"]["value"] == refund["DepositToAccountRef"]["value"] == accounts["Checking"]
    (item,) = [i for i in harness.rows("Item") if i["Name"] == "CRM sales"]
    assert set(_sales_items(receipt)) == set(_sales_items(refund)) == {item["Id"]}
    assert item["IncomeAccountRef"]["value"] == accounts["Sales of Product Income"]
    assert Decimal(str(receipt["TotalAmt"])) == Decimal("80.00")


async def test_a_line_maps_to_the_quickbooks_item_with_its_product_sku(harness: Harness) -> None:
    await harness.connect()
    mine = harness.sandbox.books(harness.realm).create("Item", {"Name": "Seat (in QuickBooks)", "Sku": "prod-42",
                                                                 "Type": "Service", "IncomeAccountRef": {"value": "1"}})  # fmt: skip
    await _settings(harness, item_mapping="sku")
    seat = with_fields(line("Workshop seat", "1", "30.00"), sku="prod-42")
    await harness.publish(payment("p-1", lines=(seat, line("Handbook", "1", "20.00"))))
    await harness.settle()
    assert await harness.dead() == []
    (receipt,) = harness.rows("SalesReceipt")
    handbook = next(i for i in harness.rows("Item") if i["Name"] == "Handbook")
    assert _sales_items(receipt) == [mine["Id"], handbook["Id"]]


async def test_a_deposit_account_missing_from_the_chart_of_accounts_writes_nothing_and_says_so(
    harness: Harness,
) -> None:
    await harness.connect()
    await _settings(harness, deposit_account="Petty cash")
    await harness.publish(payment("p-1", total="10.00"))
    await harness.settle()
    assert harness.rows("SalesReceipt") == []
    (error,) = await harness.dead()
    assert "deposit account 'Petty cash'" in error and "chart of accounts" in error


async def test_an_unknown_item_mapping_is_refused_with_a_422_and_changes_nothing(harness: Harness) -> None:
    path = f"{harness.url}/admin/api/accounts/acme/plugins/quickbooks/settings"
    headers = {"Authorization": "Bearer test-admin-token"}
    refused = await harness.http.patch(path, json={"item_mapping": "by colour"}, headers=headers)
    assert refused.status_code == 422 and "item_mapping" in refused.text
    kept = await harness.http.get(path, headers=headers)
    assert kept.json()["item_mapping"] == "name"
