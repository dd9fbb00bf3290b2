"""Invoices: totals with tax and discount, send, partial then full payment, void, delete, list, update."""

from __future__ import annotations

from typing import Any

from .conftest import LOCATION, Receiver, Sandbox

ALT = {"altId": LOCATION, "altType": "location"}
ITEMS = [
    {"name": "Consulting", "qty": 2, "amount": 100, "taxes": [{"_id": "vat", "name": "VAT 10%", "rate": 10}]},
    {"name": "Setup", "qty": 1, "amount": 50},
]


async def _invoice(sandbox: Sandbox, **extra: Any) -> dict[str, Any]:
    contact = await sandbox.contact()
    return await sandbox.control("POST", "/invoices", {"contactId": contact["id"], "items": ITEMS, **extra})  # type: ignore[no-any-return]


async def test_totals_apply_discount_then_tax(sandbox: Sandbox) -> None:
    invoice = await _invoice(sandbox, discount={"type": "percentage", "value": 10})
    got = (await sandbox.api.get(f"/invoices/{invoice['_id']}", params=ALT)).json()
    # subTotal 250; discount 25 spread pro rata (20 on Consulting); VAT 10% of 180 = 18; total 250-25+18.
    assert got["totalSummary"] == {"subTotal": 250, "discount": 25, "tax": 18}
    assert got["total"] == 243 and got["amountDue"] == 243 and got["amountPaid"] == 0
    assert got["status"] == "draft" and isinstance(got["invoiceNumber"], int)


async def test_fixed_discount_and_cents(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    items = [{"name": "Widget", "qty": 3, "amount": 19.99, "taxes": [{"_id": "t", "name": "GST", "rate": 7.5}]}]
    invoice = await sandbox.control(
        "POST", "/invoices", {"contactId": contact["id"], "items": items, "discount": {"type": "fixed", "value": 5}}
    )
    # 59.97 - 5 = 54.97; tax 7.5% = 4.12275 -> 4.12; total 59.09
    assert invoice["totalSummary"] == {"subTotal": 59.97, "discount": 5, "tax": 4.12}
    assert invoice["total"] == 59.09


async def test_send_then_partial_then_full_payment(sandbox: Sandbox, receiver: Receiver) -> None:
    invoice = await _invoice(sandbox)
    sent = await sandbox.api.post(
        f"/invoices/{invoice['_id']}/send", json={**ALT, "userId": "u1", "action": "send_manually", "liveMode": False}
    )
    assert sent.status_code == 200 and sent.json()["invoice"]["status"] == "sent"
    pay = {**ALT, "mode": "cash", "card": {"brand": "", "last4": ""}, "cheque": {"number": ""}, "notes": ""}
    part = (await sandbox.api.post(f"/invoices/{invoice['_id']}/record-payment", json={**pay, "amount": 100})).json()
    assert part["success"] is True
    assert part["invoice"]["status"] == "partially_paid" and part["invoice"]["amountPaid"] == 100
    assert part["invoice"]["amountDue"] == 170  # total 270 (250 + 20 VAT)
    too_much = await sandbox.api.post(f"/invoices/{invoice['_id']}/record-payment", json={**pay, "amount": 500})
    assert too_much.status_code == 400
    full = (await sandbox.api.post(f"/invoices/{invoice['_id']}/record-payment", json=pay)).json()["invoice"]
    assert full["status"] == "paid" and full["amountPaid"] == 270 and full["amountDue"] == 0
    await sandbox.engine.webhooks.drain()
    types = [b["type"] for b in receiver.bodies() if b["type"].startswith("Invoice")]
    assert types == ["InvoiceCreate", "InvoiceSent", "InvoicePartiallyPaid", "InvoicePaid"]
    paid = receiver.bodies("InvoicePaid")[0]
    assert paid["_id"] == invoice["_id"] and paid["altId"] == LOCATION and paid["locationId"] == LOCATION
    assert paid["invoiceNumber"] == str(invoice["invoiceNumber"]) and paid["amountPaid"] == 270
    txns = (await sandbox.api.get("/payments/transactions", params=ALT)).json()["data"]
    assert sorted(t["amount"] for t in txns) == [100, 170]
    assert {t["entitySourceType"] for t in txns} == {"invoice"} and {t["invoiceId"] for t in txns} == {invoice["_id"]}


async def test_void_and_delete(sandbox: Sandbox, receiver: Receiver) -> None:
    first, second = await _invoice(sandbox), await _invoice(sandbox, send=True)
    voided = await sandbox.api.post(f"/invoices/{second['_id']}/void", json=ALT)
    assert voided.status_code == 200 and voided.json()["status"] == "void"
    again = await sandbox.api.post(
        f"/invoices/{second['_id']}/send", json={**ALT, "userId": "u", "action": "email", "liveMode": False}
    )
    assert again.status_code == 400
    deleted = await sandbox.api.delete(f"/invoices/{first['_id']}", params=ALT)
    assert deleted.status_code == 200 and deleted.json()["_id"] == first["_id"]
    assert (await sandbox.api.get(f"/invoices/{first['_id']}", params=ALT)).status_code == 404
    unknown = await sandbox.api.post(f"/invoices/{first['_id']}/void", json=ALT)
    assert unknown.status_code == 400 and "Unable to find an invoice" in unknown.json()["message"]
    await sandbox.engine.webhooks.drain()
    assert len(receiver.bodies("InvoiceVoid")) == 1 and len(receiver.bodies("InvoiceDelete")) == 1


async def test_list_filters_by_status_and_pages(sandbox: Sandbox) -> None:
    await _invoice(sandbox)
    await _invoice(sandbox, send=True)
    await _invoice(sandbox, send=True)
    r = await sandbox.api.get("/invoices/", params={**ALT, "status": "sent", "limit": "1", "offset": "0"})
    assert r.json()["total"] == 2 and len(r.json()["invoices"]) == 1
    assert r.json()["invoices"][0]["status"] == "sent" and "totalSummary" in r.json()["invoices"][0]
    missing = await sandbox.api.get("/invoices/", params=ALT)
    assert missing.status_code == 422  # limit and offset are required by the spec


async def test_update_lines_and_discount_via_api_and_control(sandbox: Sandbox, receiver: Receiver) -> None:
    invoice = await _invoice(sandbox, send=True)
    body = {
        **ALT,
        "name": "Renamed",
        "currency": "USD",
        "issueDate": invoice["issueDate"],
        "dueDate": invoice["dueDate"],
        "invoiceItems": [{"name": "Only line", "qty": 1, "amount": 80, "currency": "USD"}],
    }
    updated = (await sandbox.api.put(f"/invoices/{invoice['_id']}", json=body)).json()
    assert updated["total"] == 80 and updated["name"] == "Renamed"
    edited = await sandbox.control("PUT", f"/invoices/{invoice['_id']}", {"discount": {"type": "fixed", "value": 30}})
    assert edited["total"] == 50 and edited["totalSummary"]["discount"] == 30
    await sandbox.engine.webhooks.drain()
    assert [b["total"] for b in receiver.bodies("InvoiceUpdate")] == [80, 50]


async def test_create_via_api_requires_the_contact_details(sandbox: Sandbox) -> None:
    body = {
        **ALT,
        "name": "X",
        "currency": "USD",
        "items": ITEMS,
        "discount": {"type": "fixed", "value": 0},
        "businessDetails": {},
        "issueDate": "2024-01-01",
        "sentTo": {"email": ["a@example.com"]},
        "liveMode": False,
        "contactDetails": {"id": "c1", "name": "A", "email": "a@example.com"},
    }
    r = await sandbox.api.post("/invoices/", json=body)
    assert r.status_code == 422 and "contactDetails.phoneNo must be a string" in r.json()["message"]
    body["contactDetails"]["phoneNo"] = "+15555550100"
    r = await sandbox.api.post("/invoices/", json=body)
    assert r.status_code == 200 and r.json()["total"] == 270
