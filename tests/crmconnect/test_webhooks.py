"""The webhook endpoint: signatures, freshness, de-duplication, and 429 only when nothing could be stored."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerbridge_crmconnect.webhooks import HIGHLEVEL_RSA_PUBLIC_KEY, WebhookKeys

from tests.crmconnect.conftest import ACCOUNT, LOCATION, Stack


def invoice_body(stack: Stack, **overrides: Any) -> dict[str, Any]:
    body = {
        "type": "InvoiceUpdate",
        "locationId": LOCATION,
        "altId": LOCATION,
        "altType": "location",
        "_id": "0123456789abcdef01234567",
        "status": "sent",
        "invoiceNumber": "1001",
        "currency": "USD",
        "total": 10,
        "amountPaid": 0,
        "amountDue": 10,
        "invoiceItems": [{"name": "Widget", "qty": 1, "amount": 10, "currency": "USD", "taxes": []}],
        "contactDetails": {"id": "c1", "name": "Ada", "email": "ada@example.com", "phoneNo": ""},
        "totalSummary": {"subTotal": 10, "discount": 0, "tax": 0},
        "createdAt": "2026-01-01T00:00:00.000Z",
        "updatedAt": "2026-01-01T00:00:00.000Z",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "webhookId": str(uuid.uuid4()),
    }
    body.update(overrides)
    return body


async def post(stack: Stack, raw: bytes, headers: dict[str, str]) -> Any:
    return await stack.http.post(
        f"{stack.server_url}/plugins/crmconnect/webhooks",
        content=raw,
        headers={"content-type": "application/json", **headers},
    )


def signed(stack: Stack, body: dict[str, Any], header: str = "x-ghl-signature") -> tuple[bytes, dict[str, str]]:
    """Sign as HighLevel does, with the sandbox's keys (the test plays the CRM here)."""
    raw = json.dumps(body).encode()
    keys = stack.engine.keys
    signature = keys.sign_ed25519(raw) if header == "x-ghl-signature" else keys.sign_rsa(raw)
    return raw, {header: signature}


async def test_one_webhook_delivered_three_times_is_one_event(stack: Stack) -> None:
    raw, headers = signed(stack, invoice_body(stack))
    answers = [await post(stack, raw, headers) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    await stack.wait_for("on_invoice_change", 1)
    await stack.settle()
    assert len(stack.calls("on_invoice_change")) == 1


async def test_the_legacy_rsa_signature_is_accepted(stack: Stack) -> None:
    raw, headers = signed(stack, invoice_body(stack), header="x-wh-signature")
    answer = await post(stack, raw, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "stored"


async def test_a_bad_signature_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    raw, headers = signed(stack, invoice_body(stack))
    tampered = raw.replace(b'"total": 10', b'"total": 1000')
    for attempt in (headers, {}, {"x-wh-signature": "bm90IGEgc2lnbmF0dXJl"}):
        answer = await post(stack, tampered, attempt)
        assert answer.status_code == 401
        assert "signature" in answer.json()["error"]["message"]
    assert await stack.runtime.store.count_deliveries(ACCOUNT) == {}


async def test_a_stale_timestamp_is_refused(stack: Stack) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=6)).isoformat().replace("+00:00", "Z")
    raw, headers = signed(stack, invoice_body(stack, timestamp=old))
    answer = await post(stack, raw, headers)
    assert answer.status_code == 400
    assert "replay" in answer.json()["error"]["message"]
    assert await stack.runtime.store.count_deliveries(ACCOUNT) == {}


async def test_a_body_that_cannot_be_routed_is_checked_against_the_default_keys(stack: Stack) -> None:
    """Malformed JSON names no location, so only the default (HighLevel's) key can vouch for it: 401, not 500."""
    raw = b'{"type": "InvoiceUpdate", "locationId": '
    answer = await post(stack, raw, {"x-ghl-signature": stack.engine.keys.sign_ed25519(raw)})
    assert answer.status_code == 401
    assert await stack.runtime.store.count_deliveries(ACCOUNT) == {}


async def test_an_unknown_location_is_acknowledged_and_ignored(stack: Stack) -> None:
    """With the sandbox mounted its keys are defaults, so a signed event for a stranger's location verifies."""
    stack.runtime.sandbox_urls["crmconnect"] = stack.sandbox_url
    raw, headers = signed(stack, invoice_body(stack, locationId="someoneElse000000001", altId="someoneElse000000001"))
    answer = await post(stack, raw, headers)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert await stack.runtime.store.count_deliveries(ACCOUNT) == {}


async def test_when_the_store_fails_the_answer_is_429_and_the_retry_arrives_once(stack: Stack) -> None:
    contact = await stack.contact()
    stack.store.failures = 1  # the next inbox write fails: the InvoiceSent webhook's
    items = [{"name": "Audit", "qty": 1, "amount": 500}]
    await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": items, "send": True})

    changes = await stack.wait_for("on_invoice_change", 1)
    await stack.settle()
    sent = stack.engine.webhooks.log("InvoiceSent")
    assert [a["status"] for a in sent[0]["attempts"]] == [429, 200]
    assert len(stack.calls("on_invoice_change")) == 1
    assert changes[0].kind == "sent"
    assert changes[0].invoice.total.amount == 500


def test_highlevels_published_key_loads() -> None:
    keys = WebhookKeys.from_text([HIGHLEVEL_RSA_PUBLIC_KEY], [])
    assert keys.rsa[0].key_size == 4096
    assert keys.verify(b"{}", None, "AAAA") is None
