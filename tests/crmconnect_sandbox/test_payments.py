"""Payments: each checkout kind's order and transaction shapes, subscriptions and renewals, refunds."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LOCATION, Receiver, Sandbox

ALT = {"altId": LOCATION, "altType": "location"}
ITEMS = [
    {"name": "Course", "qty": 1, "amount": 100, "taxes": [{"_id": "tx", "name": "Tax 10%", "rate": 10}]},
    {"name": "Workbook", "qty": 2, "amount": 19},
]


async def _get(sandbox: Sandbox, kind: str, obj_id: str) -> dict[str, Any]:
    path = {"order": "/payments/orders/", "transaction": "/payments/transactions/"}[kind]
    r = await sandbox.api.get(f"{path}{obj_id}", params=ALT)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "body", "source_type", "sub_type"),
    [
        ("/payments/order-form", {"step": "one_step"}, "funnel", "one_step_order_form"),
        ("/payments/order-form", {"step": "two_step"}, "funnel", "two_step_order_form"),
        ("/payments/order-form", {"upsell": True}, "funnel", "upsell"),
        ("/payments/membership", {}, "membership", None),
        ("/payments/calendar", {}, "calendar", "meeting"),
        ("/payments/calendar", {"subType": "service"}, "calendar", "service"),
        ("/payments/payment-link", {}, "payment_link", None),
    ],
)
async def test_checkout_kinds(
    sandbox: Sandbox, receiver: Receiver, path: str, body: dict[str, Any], source_type: str, sub_type: str | None
) -> None:
    contact = await sandbox.contact("Buyer@Example.com")
    made = await sandbox.control(
        "POST", path, {"contactId": contact["id"], "items": ITEMS, "discount": {"type": "fixed", "value": 8}, **body}
    )
    order = await _get(sandbox, "order", made["order"]["_id"])
    assert order["source"]["type"] == source_type and order["source"].get("subType") == sub_type
    assert order["status"] == "completed" and order["contactSnapshot"]["email"] == "Buyer@Example.com"
    # subtotal 138; discount 8 (100/138 of it on the taxed line = 5.80); tax 10% of 94.20 = 9.42
    assert order["amountSummary"] == {"subtotal": 138, "discount": 8, "tax": 9.42, "shipping": 0}
    assert order["amount"] == 139.42 and [i["name"] for i in order["items"]] == ["Course", "Workbook"]
    assert order["items"][1]["price"] == {**order["items"][1]["price"], "amount": 19, "type": "one_time"}
    assert order["taxSummary"][0]["amount"] == 9.42
    txn = await _get(sandbox, "transaction", made["transaction"]["_id"])
    assert txn["entitySourceType"] == source_type and txn.get("entitySourceSubType") == sub_type
    assert txn["entityType"] == "order" and txn["entityId"] == order["_id"] and "subscriptionId" not in txn
    assert txn["amount"] == 139.42 and txn["status"] == "succeeded" and txn["amountRefunded"] == 0
    assert txn["contactEmail"] == "Buyer@Example.com" and txn["currency"] == "USD"
    await sandbox.engine.webhooks.drain()
    created, updated = receiver.bodies("OrderCreate"), receiver.bodies("OrderStatusUpdate")
    assert len(created) == 1 and created[0]["status"] == "pending" and updated[0]["status"] == "completed"
    assert created[0]["source"]["type"] == source_type and created[0]["contactSnapshot"]["email"] == "Buyer@Example.com"
    assert created[0]["amountSummary"]["tax"] == 9.42 and created[0]["locationId"] == LOCATION


async def test_subscription_first_charge_then_renewal_without_webhook(sandbox: Sandbox, receiver: Receiver) -> None:
    contact = await sandbox.contact()
    made = await sandbox.control(
        "POST",
        "/payments/subscriptions",
        {"contactId": contact["id"], "items": [{"name": "Monthly plan", "qty": 1, "amount": 49}]},
    )
    sub, first = made["subscription"], made["transaction"]
    assert first["subscriptionId"] == sub["subscriptionId"] and first["meta"]["billingReason"] == "subscription_create"
    assert first["entitySourceType"] == "funnel" and first["entityType"] == "order"
    assert made["order"]["items"][0]["price"]["type"] == "recurring"
    await sandbox.engine.webhooks.drain()
    before = len(receiver.received)
    renewal = (await sandbox.control("POST", f"/payments/subscriptions/{sub['_id']}/renew"))["transaction"]
    await sandbox.engine.webhooks.drain()
    assert len(receiver.received) == before  # HighLevel sends no webhook for a renewal
    assert renewal["subscriptionId"] == sub["subscriptionId"] and renewal["entityType"] == "subscription"
    assert renewal["entityId"] == sub["_id"] and renewal["meta"]["billingReason"] == "subscription_cycle"
    assert renewal["amount"] == 49 and renewal["_id"] != first["_id"]
    listed = (
        await sandbox.api.get("/payments/transactions", params={**ALT, "subscriptionId": sub["subscriptionId"]})
    ).json()
    assert listed["totalCount"] == 2
    orders = (await sandbox.api.get("/payments/orders", params={"altId": LOCATION})).json()
    assert orders["totalCount"] == 1  # the renewal made no order
    got = (await sandbox.api.get(f"/payments/subscriptions/{sub['_id']}", params=ALT)).json()
    assert got["status"] == "active" and got["entitySource"]["type"] == "funnel"
    by_provider_id = await sandbox.api.get(f"/payments/subscriptions/{sub['subscriptionId']}", params=ALT)
    assert by_provider_id.json()["_id"] == sub["_id"]
    assert (await sandbox.api.get("/payments/subscriptions", params=ALT)).json()["totalCount"] == 1


async def test_membership_subscription_keeps_its_source(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    made = await sandbox.control(
        "POST",
        "/payments/subscriptions",
        {
            "contactId": contact["id"],
            "sourceType": "membership",
            "subType": None,
            "items": [{"name": "Club", "qty": 1, "amount": 10}],
        },
    )
    renewal = (await sandbox.control("POST", f"/payments/subscriptions/{made['subscription']['_id']}/renew"))[
        "transaction"
    ]
    assert renewal["entitySourceType"] == "membership" and "entitySourceSubType" not in renewal


async def test_refund_partial_then_full(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    made = await sandbox.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    txn_id = made["transaction"]["_id"]
    part = await sandbox.control("POST", f"/payments/transactions/{txn_id}/refund", {"amount": 10})
    assert part["amountRefunded"] == 10 and part["status"] == "partially_refunded"
    full = await sandbox.control("POST", f"/payments/transactions/{txn_id}/refund", {})
    assert full["amountRefunded"] == full["amount"] and full["status"] == "refunded"
    got = await _get(sandbox, "transaction", txn_id)
    assert got["status"] == "refunded" and got["amountRefunded"] == got["amount"]
    await sandbox.control("POST", f"/payments/transactions/{txn_id}/refund", {}, expect=400)


async def test_transaction_window_and_filters(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    await sandbox.control("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
    await sandbox.control("POST", "/payments/calendar", {"contactId": contact["id"], "items": ITEMS})
    created = sandbox.engine.state.transactions
    today = next(iter(created.values()))["createdAt"][:10]
    r = await sandbox.api.get("/payments/transactions", params={**ALT, "startAt": today, "endAt": today})
    assert r.json()["totalCount"] == 2
    r = await sandbox.api.get("/payments/transactions", params={**ALT, "startAt": "2099-01-01"})
    assert r.json()["totalCount"] == 0
    r = await sandbox.api.get("/payments/transactions", params={**ALT, "entitySourceType": "calendar", "limit": 5})
    assert [t["entitySourceType"] for t in r.json()["data"]] == ["calendar"]
    r = await sandbox.api.get("/payments/transactions", params={**ALT, "contactId": "someone-else"})
    assert r.json() == {"data": [], "totalCount": 0}


async def test_unknown_order_answers_the_payments_404_shape(sandbox: Sandbox) -> None:
    r = await sandbox.api.get("/payments/orders/000000000000000000000000", params={"altId": LOCATION})
    body = r.json()
    assert r.status_code == 404 and body["status"] == 404 and body["name"] == "HttpException" and body["traceId"]
