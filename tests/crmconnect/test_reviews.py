"""The CRM sends the review request the core asks for: one message, however often the delivery repeats."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ledgerbridge import Contact, DeliveryContext, FirstInvoicePaid, Money, ReviewRequest

from tests.crmconnect.conftest import LOCATION, Stack

LINK = "https://g.page/r/acme/review"


def first_paid(
    channel: str = "email", customer_id: str = "qb-7", email: str | None = "Ada@Example.com"
) -> FirstInvoicePaid:
    return FirstInvoicePaid(
        contact=Contact(name="Ada Lovelace", email=email),
        customer_id=customer_id,
        invoice_id="inv-1",
        invoice_number="1001",
        total=Money(amount=Decimal("99.00"), currency="USD"),
        paid_at=datetime(2026, 3, 1, tzinfo=UTC),
        request=ReviewRequest(
            channel=channel,  # type: ignore[arg-type]
            message=f"Thanks Ada! Tell us how we did: {LINK}",
            link=LINK,
            subject="How did we do?" if channel == "email" else None,
        ),
    )


async def deliver(stack: Stack, event_id: str, event: FirstInvoicePaid) -> dict[str, int]:
    producer = await stack.producer()
    assert await producer.publish(event, external_id=event_id)
    return await stack.settle()


async def messages(stack: Stack) -> list[dict[str, object]]:
    return list((await stack.control("GET", "/messages"))["messages"])


async def test_the_review_email_reaches_the_contact_once_even_when_the_delivery_repeats(stack: Stack) -> None:
    contact = await stack.contact("ada@example.com")
    assert await deliver(stack, "first-paid-a", first_paid()) == {"done": 2}  # the CRM and the observer
    [sent] = await messages(stack)
    assert sent["contactId"] == contact["id"] and sent["type"] == "Email"
    assert LINK in str(sent["message"]) and sent["subject"] == "How did we do?"

    # a lease that expired after the CRM accepted: the same delivery is handed out again
    [delivery] = [d for d in await stack.runtime.store.list_deliveries("acme", "done") if d.plugin == "crmconnect"]
    ctx = await stack.account()
    again = DeliveryContext(
        stack.runtime, "crmconnect", ctx.account, delivery_id=delivery.id, attempt=2,
        event_type="first_invoice_paid", event_external_id="first-paid-a", source="producer", received_at=0.0,
    )  # fmt: skip
    await stack.runtime.plugins.deliver("crmconnect", again, first_paid())
    assert len(await messages(stack)) == 1


async def test_an_sms_review_request_goes_as_an_sms(stack: Stack) -> None:
    await stack.contact("ada@example.com", phone="+15555550100")
    await deliver(stack, "first-paid-sms", first_paid("sms"))
    [sent] = await messages(stack)
    assert sent["type"] == "SMS" and LINK in str(sent["message"])


async def test_a_customer_unknown_to_the_crm_becomes_a_contact_and_gets_the_request(stack: Stack) -> None:
    await deliver(stack, "first-paid-new", first_paid(email="grace@example.com", customer_id="qb-9"))
    [sent] = await messages(stack)
    contact = stack.engine.state.contacts[str(sent["contactId"])]
    assert contact["email"] == "grace@example.com"


async def test_the_sandbox_location_offers_its_review_page_as_the_default_link(stack: Stack) -> None:
    link = await stack.runtime.default_review_link("acme")
    assert link == f"{stack.sandbox_url}/locations/{LOCATION}/review"


async def test_the_default_review_link_opens_the_sandbox_review_page(stack: Stack) -> None:
    link = await stack.runtime.default_review_link("acme")
    assert link is not None
    page = await stack.http.get(link)
    assert page.status_code == 200 and "Review Acme CRM" in page.text
