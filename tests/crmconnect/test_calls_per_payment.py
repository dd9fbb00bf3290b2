"""What each payment costs in CRM API calls, counted by the sandbox's own rate limiter (what HighLevel counts
against the location's 100 requests per 10 s)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ledgerbridge import Payment

from tests.crmconnect.conftest import LOCATION, Stack
from tests.crmconnect.test_payments import ITEMS, pause_poller


def count_api_calls(stack: Stack) -> Callable[[], int]:
    """Every API request the sandbox admits for the location, from now on."""
    limiter = stack.engine.limiter
    seen: list[str] = []
    admit = limiter.hit

    def hit(client: str, location_id: str) -> Any:
        verdict = admit(client, location_id)
        if verdict.allowed and location_id == LOCATION:
            seen.append(client)
        return verdict

    limiter.hit = hit  # type: ignore[method-assign]
    return lambda: len(seen)


async def quiet(stack: Stack) -> None:
    """The poller paused, and a tick already under way given time to end: its calls are not the counted ones."""
    await pause_poller(stack)
    await asyncio.sleep(0.5)


async def test_a_burst_of_payments_costs_at_most_one_crm_call_each(stack: Stack) -> None:
    await quiet(stack)  # the webhooks alone
    contact = await stack.contact("burst@example.com")
    calls = count_api_calls(stack)
    burst = 12
    for _ in range(burst):
        await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    await stack.wait_for("on_payment", burst)
    await stack.settle()
    payments: list[Payment] = stack.calls("on_payment")
    assert len({p.payment_id for p in payments}) == burst == len(payments)
    assert all(p.lines[0].name == "Coaching session" and p.payer.email == "burst@example.com" for p in payments)
    assert calls() <= burst, f"{calls()} CRM calls for {burst} payments"


async def test_a_webhook_that_carries_the_order_needs_no_order_fetch(stack: Stack) -> None:
    await quiet(stack)
    contact = await stack.contact()
    calls = count_api_calls(stack)
    await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    payment = (await stack.wait_for("on_payment", 1))[0]
    await stack.settle()
    assert calls() == 1  # the transaction that took the money; the order is the webhook's body
    assert payment.lines[0].name == "Coaching session" and payment.order_id is not None


async def test_a_partial_order_webhook_falls_back_to_one_fetch_of_the_order(stack: Stack) -> None:
    await quiet(stack)
    contact = await stack.contact()
    await stack.control("PUT", "/webhook-url", {"url": None})  # this checkout's own webhooks go nowhere
    checkout = await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    await stack.control("PUT", "/webhook-url", {"url": f"{stack.server_url}/plugins/crmconnect/webhooks"})
    order_id = checkout["order"]["_id"]
    calls = count_api_calls(stack)
    # a body with the id and status only, as a terser delivery than the documented one could be
    stack.engine.emit("OrderStatusUpdate", LOCATION, {"_id": order_id, "altId": LOCATION, "status": "completed"})
    payment = (await stack.wait_for("on_payment", 1))[0]
    await stack.settle()
    assert payment.order_id == order_id and payment.lines[0].name == "Coaching session"
    assert calls() == 2  # GET the order, then its transaction
