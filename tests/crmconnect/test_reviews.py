"""A customer's first paid invoice sends one review request, however often the event arrives."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledgerbridge import Contact, FirstInvoicePaid, Money

from tests.crmconnect.conftest import Stack


def first_paid(customer_id: str = "qb-7", email: str | None = "Ada@Example.com") -> FirstInvoicePaid:
    return FirstInvoicePaid(
        contact=Contact(name="Ada Lovelace", email=email),
        customer_id=customer_id,
        invoice_id="inv-1",
        invoice_number="1001",
        total=Money(amount=Decimal("99.00"), currency="USD"),
        paid_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


async def deliver(stack: Stack, event_id: str, event: FirstInvoicePaid) -> None:
    producer = await stack.producer()
    assert await producer.publish(event, external_id=event_id)
    await stack.wait_for("on_first_invoice_paid", len(stack.calls("on_first_invoice_paid")) + 1)
    await stack.settle()


async def configure(stack: Stack, **settings: Any) -> None:
    account = await stack.account()
    await account.update_settings(review_request_enabled=True, **settings)


async def test_the_review_message_is_sent_once_even_if_delivered_twice(stack: Stack) -> None:
    contact = await stack.contact("ada@example.com")
    await configure(stack, review_method="message", review_link="https://g.page/r/acme/review")

    await deliver(stack, "first-paid-a", first_paid())
    await deliver(stack, "first-paid-b", first_paid())  # the same news again, under another event id

    messages = (await stack.control("GET", "/messages"))["messages"]
    assert len(messages) == 1
    assert messages[0]["contactId"] == contact["id"]
    assert messages[0]["type"] == "Email"
    assert "https://g.page/r/acme/review" in messages[0]["message"]


async def test_the_workflow_method_enrols_the_contact_once(stack: Stack) -> None:
    contact = await stack.contact("ada@example.com")
    await configure(stack, review_method="workflow", review_workflow_id="wf-reviews")

    await deliver(stack, "first-paid-a", first_paid())
    await deliver(stack, "first-paid-b", first_paid(customer_id="qb-8"))  # another customer, same e-mail

    enrolments = (await stack.control("GET", "/workflow-enrolments"))["enrolments"]
    assert [(e["contactId"], e["workflowId"]) for e in enrolments] == [(contact["id"], "wf-reviews")]


async def test_the_tag_method_tags_the_contact(stack: Stack) -> None:
    contact = await stack.contact("ada@example.com")
    await configure(stack, review_method="tag", review_tag="Review Request")
    await deliver(stack, "first-paid-a", first_paid())
    assert "review request" in stack.engine.state.contacts[contact["id"]]["tags"]


async def test_nothing_is_sent_while_review_requests_are_off(stack: Stack) -> None:
    await stack.contact("ada@example.com")
    await deliver(stack, "first-paid-a", first_paid())
    assert (await stack.control("GET", "/messages"))["messages"] == []
