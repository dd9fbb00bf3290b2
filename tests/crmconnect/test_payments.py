"""Payments taken in the CRM reach consumers exactly once, by webhook or by the reconciliation poller."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from ledgerbridge import Payment

from tests.crmconnect.conftest import Stack

ITEMS = [{"name": "Coaching session", "qty": 1, "amount": 120, "taxes": [{"name": "VAT", "rate": 10}]}]


async def pause_poller(stack: Stack) -> None:
    account = await stack.account()
    await account.update_settings(poll_interval_seconds=3600.0)
    await account.set_cursor("transactions_polled_at", "2999-01-01T00:00:00Z")


async def test_each_checkout_kind_becomes_one_payment_of_its_kind_by_webhook(stack: Stack) -> None:
    await pause_poller(stack)  # only the webhooks can find these
    contact = await stack.contact("Grace@Example.com")
    await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    await stack.control("POST", "/payments/subscriptions", {"contactId": contact["id"], "items": ITEMS})
    await stack.control("POST", "/payments/membership", {"contactId": contact["id"], "items": ITEMS})
    await stack.control("POST", "/payments/calendar", {"contactId": contact["id"], "items": ITEMS})

    await stack.wait_for("on_payment", 4)
    await stack.settle()
    payments: list[Payment] = stack.calls("on_payment")

    assert sorted(p.source_kind for p in payments) == ["calendar", "membership", "order_form", "subscription"]
    for payment in payments:
        assert payment.payer.email == "Grace@Example.com"
        assert payment.total.amount == Decimal("132")
        assert payment.tax.amount == Decimal("12")
        assert payment.lines[0].name == "Coaching session"
        assert payment.order_id is not None
    subscription = next(p for p in payments if p.source_kind == "subscription")
    assert subscription.subscription_id is not None


async def test_webhook_and_poller_together_count_each_payment_once(stack: Stack) -> None:
    contact = await stack.contact()
    for path in ("order-form", "subscriptions", "membership", "calendar"):
        await stack.control("POST", f"/payments/{path}", {"contactId": contact["id"], "items": ITEMS})
    await stack.wait_for("on_payment", 4)
    await stack.settle()
    await asyncio.sleep(0.5)  # several poller passes over the same transactions
    assert len(stack.calls("on_payment")) == 4
    assert len({p.payment_id for p in stack.calls("on_payment")}) == 4


async def test_a_subscription_renewal_is_found_by_the_poller(stack: Stack) -> None:
    contact = await stack.contact()
    started = await stack.control("POST", "/payments/subscriptions", {"contactId": contact["id"], "items": ITEMS})
    first = (await stack.wait_for("on_payment", 1))[0]

    renewal = await stack.control("POST", f"/payments/subscriptions/{started['subscription']['_id']}/renew")
    assert stack.engine.webhooks.log("OrderCreate")  # the checkout had webhooks; the renewal has none
    payments = await stack.wait_for("on_payment", 2)
    await asyncio.sleep(0.5)

    assert len(stack.calls("on_payment")) == 2
    second = payments[1]
    assert second.payment_id == renewal["transaction"]["_id"] != first.payment_id
    assert second.source_kind == "subscription"
    assert second.subscription_id == first.subscription_id
    assert second.total.amount == Decimal("132")
    assert second.payer.email == "ada@example.com"
    assert renewal["transaction"]["invoiceId"].startswith("in_")  # Stripe's invoice, not a CRM one
    assert second.invoice_id is None


async def test_a_payment_the_webhook_missed_is_found_by_the_poller(stack: Stack) -> None:
    contact = await stack.contact()
    await stack.control("PUT", "/webhook-url", {"url": None})  # the webhooks are lost
    result = await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})

    payments = await stack.wait_for("on_payment", 1)
    assert payments[0].payment_id == result["transaction"]["_id"]
    assert payments[0].source_kind == "order_form"


async def test_a_refund_republishes_the_payment_with_the_refund(stack: Stack) -> None:
    contact = await stack.contact()
    result = await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    await stack.wait_for("on_payment", 1)
    account = await stack.account()
    await account.set_cursor("refunds_swept_at", None)  # make the next pass sweep for refunds now
    await stack.control("POST", f"/payments/transactions/{result['transaction']['_id']}/refund", {"amount": 32})

    payments = await stack.wait_for("on_payment", 2)
    assert payments[1].payment_id == payments[0].payment_id
    assert [r.amount.amount for r in payments[1].refunds] == [Decimal("32")]


async def test_two_partial_refunds_publish_each_refund_s_own_money(stack: Stack) -> None:
    contact = await stack.contact()
    result = await stack.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    txn_id = result["transaction"]["_id"]
    await stack.wait_for("on_payment", 1)
    account = await stack.account()
    await account.set_cursor("refunds_swept_at", None)
    await stack.control("POST", f"/payments/transactions/{txn_id}/refund", {"amount": 30})
    await stack.wait_for("on_payment", 2)
    await account.set_cursor("refunds_swept_at", None)
    await stack.control("POST", f"/payments/transactions/{txn_id}/refund", {"amount": 20})
    payments = await stack.wait_for("on_payment", 3)
    await stack.settle()

    assert stack.engine.state.transactions[txn_id]["amountRefunded"] == Decimal("50")  # the CRM's running total
    assert [r.amount.amount for r in payments[1].refunds] == [Decimal("30")]
    assert [r.amount.amount for r in payments[2].refunds] == [Decimal("30"), Decimal("20")]
    assert payments[2].refunds[0].refund_id == payments[1].refunds[0].refund_id  # the first refund keeps its id


async def test_a_refunded_invoice_payment_is_published_against_its_invoice(stack: Stack) -> None:
    contact = await stack.contact("billing@example.com")
    invoice = await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": ITEMS, "send": True})
    await stack.control("POST", f"/invoices/{invoice['_id']}/pay", {})
    await stack.wait_for("on_invoice_change", 2)
    await stack.settle()
    await asyncio.sleep(0.3)
    assert stack.calls("on_payment") == []  # the payment itself is the invoice's, not a sale of its own
    txn = next(t for t in stack.engine.state.transactions.values() if t.get("invoiceId") == invoice["_id"])
    account = await stack.account()
    await account.set_cursor("refunds_swept_at", None)
    await stack.control("POST", f"/payments/transactions/{txn['_id']}/refund", {"amount": 40})

    (refunded,) = await stack.wait_for("on_payment", 1)
    assert refunded.invoice_id == invoice["_id"]
    assert [r.amount.amount for r in refunded.refunds] == [Decimal("40")]
