"""CRM invoices → QuickBooks invoices: create when sent, follow changes, payments, void, delete."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from .conftest import Harness, invoice, line, now


def _invoice(harness: Harness, number: str) -> dict[str, Any]:
    found = [row for row in harness.rows("Invoice") if row.get("DocNumber") == number]
    assert len(found) == 1, [row.get("DocNumber") for row in harness.rows("Invoice")]
    return found[0]


async def test_sent_invoice_is_replicated_with_number_dates_email_and_total(harness: Harness) -> None:
    await harness.connect()
    lines = (line("Consulting", "3", "120.00"), line("Travel", "1", "45.50"))
    await harness.publish(invoice("i-1", "sent", number="1042", lines=lines, discount="40.50", tax="26.40"))
    await harness.settle()
    assert await harness.dead() == []
    qbo = _invoice(harness, "1042")
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("391.40") == Decimal(str(qbo["Balance"]))
    assert qbo["BillEmail"]["Address"] == "grace@example.com"
    assert qbo["TxnDate"] == now().date().isoformat()
    customer = harness.rows("Customer")[0]
    assert customer["DisplayName"] == "Grace Hopper" and qbo["CustomerRef"]["value"] == customer["Id"]


async def test_updates_payments_and_void_follow_the_crm(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="2001"))
    await harness.publish(invoice("i-1", "updated", number="2001", lines=(line("Consulting", "3", "50.00"),)))
    await harness.publish(invoice("i-1", "partially_paid", number="2001", lines=(line("Consulting", "3", "50.00"),),
                                  paid="60.00"))  # fmt: skip
    await harness.publish(invoice("i-1", "paid", number="2001", lines=(line("Consulting", "3", "50.00"),),
                                  paid="150.00"))  # fmt: skip
    await harness.settle()
    assert await harness.dead() == []
    qbo = _invoice(harness, "2001")
    assert Decimal(str(qbo["TotalAmt"])) == Decimal("150.00") and Decimal(str(qbo["Balance"])) == 0
    payments = harness.rows("Payment")
    assert sorted(Decimal(str(p["TotalAmt"])) for p in payments) == [Decimal("60.00"), Decimal("90.00")]
    # a repeated paid event records nothing more
    await harness.publish(invoice("i-1", "paid", number="2001", lines=(line("Consulting", "3", "50.00"),),
                                  paid="150.00"))  # fmt: skip
    await harness.publish(invoice("i-1", "voided", number="2001", lines=(line("Consulting", "3", "50.00"),),
                                  paid="150.00"))  # fmt: skip
    await harness.settle()
    assert await harness.dead() == []
    assert len(harness.rows("Payment")) == 2
    qbo = _invoice(harness, "2001")
    assert qbo["TotalAmt"] == 0 and qbo["PrivateNote"].startswith("Voided")  # voided after payments: fresh SyncToken


async def test_a_payment_is_never_above_the_open_balance(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="3001"))
    await harness.settle()
    qbo = _invoice(harness, "3001")
    harness.sandbox.books(harness.realm).create(
        "Payment",
        {
            "CustomerRef": qbo["CustomerRef"],
            "TotalAmt": 30,
            "Line": [{"Amount": 30, "LinkedTxn": [{"TxnId": qbo["Id"], "TxnType": "Invoice"}]}],
        },
    )  # fmt: skip   — the user recorded 30.00 in QuickBooks meanwhile
    await harness.publish(invoice("i-1", "paid", number="3001", paid="100.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert sorted(Decimal(str(p["TotalAmt"])) for p in harness.rows("Payment")) == [Decimal("30"), Decimal("70.00")]
    assert _invoice(harness, "3001")["Balance"] == 0


async def test_deleted_invoice_is_deleted_in_quickbooks(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="4001"))
    await harness.publish(invoice("i-1", "deleted", number="4001"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.rows("Invoice") == []


async def test_invoices_never_sent_or_created_before_the_connection_are_not_synced(harness: Harness) -> None:
    before = now() - timedelta(minutes=5)
    await harness.connect()
    await harness.publish(invoice("old", "sent", number="5001", created_at=before))
    await harness.publish(invoice("draft", "updated", number="5002", status="draft"))
    counts = await harness.settle()
    assert counts.get("skipped") == 2
    assert harness.rows("Invoice") == []
    messages = "\n".join(await harness.activity())
    assert "before the sync start" in messages and "never sent" in messages


async def test_an_update_after_a_quickbooks_side_change_rereads_the_sync_token(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(invoice("i-1", "sent", number="6001"))
    await harness.settle()
    qbo = _invoice(harness, "6001")
    books = harness.sandbox.books(harness.realm)
    books.update("Invoice", {"Id": qbo["Id"], "SyncToken": qbo["SyncToken"], "CustomerMemo": {"value": "hi"}},
                 sparse=True)  # fmt: skip
    await harness.publish(invoice("i-1", "updated", number="6001", lines=(line("Consulting", "4", "50.00"),)))
    await harness.settle()
    assert await harness.dead() == []
    assert Decimal(str(_invoice(harness, "6001")["TotalAmt"])) == Decimal("200.00")
