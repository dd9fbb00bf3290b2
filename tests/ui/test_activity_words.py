"""How a delivery's state is said in words on the activity page."""

from __future__ import annotations

from ledgerbridge.store import Delivery
from ledgerbridge.store.base import DeliveryState
from ledgerbridge.ui.activity import details_of, explain


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
