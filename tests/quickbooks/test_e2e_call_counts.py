"""What each document costs in QuickBooks API calls, counted where Intuit would count them: at the sandbox.

Intuit's webhooks about our own writes arrive as they would for a user (the sandbox app is subscribed), and
every count includes what their notifications cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from .conftest import Harness, invoice, line, payment, wrap_sandbox

CONSULTING = (line("Consulting", "2", "50.00"),)


@dataclass
class Counted:
    """An ASGI wrapper that records each Accounting API request reaching the sandbox."""

    app: Any
    calls: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "/v3/company/" in scope["path"]:
            self.calls.append(f"{scope['method']} {scope['path'].split('/v3/company/', 1)[1]}")
        await self.app(scope, receive, send)


@pytest.fixture
def counted(harness: Harness) -> Counted:
    return wrap_sandbox(harness, Counted)


async def _cost(harness: Harness, counter: Counted, *events: Any) -> list[str]:
    """The API calls made for `events`, including the echoes' notifications and the review check."""
    before = len(counter.calls)
    for event in events:
        await harness.publish(event)
    await harness.settle()
    await harness.webhooks_delivered()
    assert await harness.dead() == []
    return counter.calls[before:]


async def _warm(harness: Harness, counter: Counted) -> None:
    """The company's setup, the item and the payment method are looked up once per company: not measured."""
    await harness.connect()
    await _cost(harness, counter, payment("warm", email="warm@example.com", lines=CONSULTING))


async def test_a_known_customers_receipt_costs_one_call(harness: Harness, counted: Counted) -> None:
    await _warm(harness, counted)
    calls = await _cost(harness, counted, payment("p-1", email="warm@example.com", lines=CONSULTING))
    assert len(calls) == 1, calls
    assert calls[0].startswith("POST") and "salesreceipt" in calls[0]


async def test_a_new_customers_receipt_costs_two_calls_a_batch_that_asks_and_creates_then_the_receipt(
    harness: Harness, counted: Counted
) -> None:
    await _warm(harness, counted)
    calls = await _cost(harness, counted, payment("p-1", email="new@example.com", name="New Buyer", lines=CONSULTING))
    # is there a customer with this e-mail (one whose webhook is still on the way)? and the create, in one batch
    assert len(calls) == 2, calls
    assert "/batch" in calls[0] and "salesreceipt" in calls[1], calls
    assert [c["DisplayName"] for c in harness.rows("Customer")].count("New Buyer") == 1
    # the new customer still reaches the CRM as a contact (from the create's reply, not a read of its echo)
    ids = {c["Id"] for c in harness.rows("Customer") if c["DisplayName"] == "New Buyer"}
    await harness.until(lambda: ids <= {s.source_id for s in harness.crm.contacts})


async def test_an_invoice_paid_in_the_crm_costs_at_most_three_calls_and_still_asks_for_a_review(
    harness: Harness, counted: Counted
) -> None:
    await _warm(harness, counted)
    sent = await _cost(harness, counted, invoice("i-1", "sent", number="5001", email="warm@example.com",
                                                 name="Warm Buyer", lines=CONSULTING))  # fmt: skip
    assert len(sent) <= 2, sent  # the number check and the create; the echo is not read back
    paid = await _cost(harness, counted, invoice("i-1", "paid", number="5001", email="warm@example.com",
                                                 name="Warm Buyer", lines=CONSULTING, paid="100.00"))  # fmt: skip
    assert len(paid) <= 3, paid
    assert not [c for c in paid if c.startswith("GET") and "/payment/" in c.lower()], paid  # own payment not re-read
    await harness.until(lambda: len(harness.crm.first_paid) == 1)
    event = harness.crm.first_paid[0]
    assert event.contact.email == "warm@example.com" and event.invoice_number == "5001"


async def test_a_void_costs_at_most_two_calls(harness: Harness, counted: Counted) -> None:
    await _warm(harness, counted)
    await _cost(harness, counted, invoice("i-1", "sent", number="6001", email="warm@example.com", lines=CONSULTING))
    await _cost(harness, counted, invoice("i-1", "paid", number="6001", email="warm@example.com", lines=CONSULTING,
                                          paid="100.00"))  # fmt: skip
    voided = await _cost(harness, counted, invoice("i-1", "voided", number="6001", email="warm@example.com",
                                                   lines=CONSULTING, paid="100.00"))  # fmt: skip
    assert len(voided) <= 2, voided
    assert next(r for r in harness.rows("Invoice") if r["DocNumber"] == "6001")["PrivateNote"].startswith("Voided")


async def test_a_payment_made_in_quickbooks_is_still_read_and_reported_paid(harness: Harness, counted: Counted) -> None:
    await _warm(harness, counted)
    await _cost(harness, counted, invoice("i-1", "sent", number="7001", email="warm@example.com", lines=CONSULTING))
    books = harness.sandbox.books(harness.realm)
    qbo = next(r for r in harness.rows("Invoice") if r["DocNumber"] == "7001")
    before = len(counted.calls)
    books.create("Payment", {"CustomerRef": qbo["CustomerRef"], "TotalAmt": 100,
                             "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": qbo["Id"], "TxnType": "Invoice"}]}]})  # fmt: skip
    await harness.until(lambda: len(harness.crm.first_paid) == 1)
    await harness.webhooks_delivered()
    assert [c for c in counted.calls[before:] if c.startswith("GET")], counted.calls[before:]  # not ours: read


async def test_payments_from_one_new_payer_arriving_together_make_one_customer(
    harness: Harness, counted: Counted
) -> None:
    await _warm(harness, counted)
    together = [payment(f"p-{n}", email="crowd@example.com", name="Crowd Buyer", lines=CONSULTING) for n in range(6)]
    calls = await _cost(harness, counted, *together)
    assert [c["DisplayName"] for c in harness.rows("Customer")].count("Crowd Buyer") == 1
    assert len(harness.rows("SalesReceipt")) == 7  # the warm-up's and these six
    realm = harness.realm
    # one batch asks for the e-mail and creates the customer; six receipts: one call each, or fewer when batched
    assert set(calls) <= {f"POST {realm}/salesreceipt", f"POST {realm}/batch"}, calls
    assert calls[0] == f"POST {realm}/batch" and len(calls) <= 7, calls
