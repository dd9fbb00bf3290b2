"""How a delivery's state is said in words on the activity page."""

from __future__ import annotations

from decimal import Decimal

from ledgerbridge import Money
from ledgerbridge.samples import (
    sample_contact_sync,
    sample_first_invoice_paid,
    sample_invoice_change,
    sample_payment,
)
from ledgerbridge.store import Delivery
from ledgerbridge.store.base import DeliveryState
from ledgerbridge.ui.activity import details_of, explain
from ledgerbridge.ui.render import relative_time
from ledgerbridge.ui.words import describe, money


def delivery(state: DeliveryState, attempts: int = 1, error: str | None = None) -> Delivery:
    return Delivery(
        id=7, event_seq=1, account_id="acme", plugin="quickbooks", event_type="payment", object_key="payment:p",
        state=state, attempts=attempts, next_attempt_at=1_800_000_000.0, last_error=error, updated_at=0.0,
    )  # fmt: skip


def test_each_state_in_plain_words() -> None:
    assert explain(delivery("done")) == "Delivered."
    assert explain(delivery("pending", attempts=0)) == "Waiting to be sent."
    assert explain(delivery("pending", attempts=2, error="timeout")) == (
        "Attempt 2 failed; the next try is at 2027-01-15 08:00:00 UTC."
    )
    assert explain(delivery("skipped", error="order o-1 is pending, not paid")) == (
        "Skipped: order o-1 is pending, not paid."
    )
    assert explain(delivery("skipped")) == "Skipped: there was nothing to do."
    assert explain(delivery("dead", error="boom")).startswith("Gave up on this one: it needs you.")


def test_vendor_details_come_first_and_the_delivery_id_is_left_out() -> None:
    details = details_of(
        {"zeta": [1, 2], "delivery_id": 7, "vendor_transaction_id": "1-tid", "vendor_message": "Bad line"}
    )
    assert [(d.label, d.value) for d in details] == [
        ("The vendor said", "Bad line"),
        ("The vendor's transaction id", "1-tid"),
        ("zeta", "[1, 2]"),
    ]


def test_events_are_said_in_business_words() -> None:
    payment = describe(sample_payment())
    assert payment.parts[0].startswith("Payment $") and payment.parts[1] == "Ada Lovelace"
    sent = describe(sample_invoice_change("sent"))
    assert sent.parts == ("Invoice INV-2001 sent", "Ada Lovelace", "total $362.07, balance $362.07")
    assert sent.subject == "Invoice INV-2001" and sent.step == "sent, total $362.07"
    assert describe(sample_invoice_change("updated")).step == "edited"
    assert describe(sample_invoice_change("paid")).step == "paid $362.07, balance $0.00"
    review = describe(sample_first_invoice_paid())
    assert review.parts == ("Review request", "Ada Lovelace", "by email")
    assert review.step == "asked after first invoice 1037 was paid"
    assert describe(sample_contact_sync()).headline == "Contact imported"


def test_money_has_its_symbol_or_its_code() -> None:
    assert money(Money(amount=Decimal("1234.5"), currency="USD")) == "$1,234.50"
    assert money(Money(amount=Decimal("7"), currency="GBP")) == "£7.00"
    assert money(Money(amount=Decimal("12.00"), currency="CHF")) == "12.00 CHF"


def test_one_relative_time_format() -> None:
    now = 1_800_000_000.0
    assert relative_time(now - 5, now) == "just now"
    assert relative_time(now - 125, now) == "2 min ago"
    assert relative_time(now - 3 * 3600, now) == "3 h ago"
    assert relative_time(now - 30 * 3600, now) == "yesterday"
    assert relative_time(now - 4 * 86400, now) == "4 days ago"
    assert relative_time(now - 90 * 86400, now) == "2026-10-17"
    assert relative_time(None, now) == "never"
