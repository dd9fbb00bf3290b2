"""HighLevel's documents are the contract: every documented webhook example, signed, is handled as it says."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ledgerbridge import InvoiceChange

from tests.crmconnect.conftest import LOCATION, Stack
from tests.crmconnect.test_webhooks import post, signed

EXAMPLES = Path(__file__).parents[1] / "crmconnect_sandbox" / "highlevel-api" / "docs" / "webhook-events"
BLOCK = re.compile(r"```json[^\n]*\n(.*?)```", re.S)


def examples() -> dict[str, list[dict[str, Any]]]:
    """Each event's documented example bodies (the JSON blocks that are not its schema)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(EXAMPLES.glob("*.md")):
        bodies = [json.loads(block) for block in BLOCK.findall(path.read_text())]
        found[path.stem] = [b for b in bodies if not (b.get("type") == "object" and "properties" in b)]
    return found


def at_our_location(body: dict[str, Any]) -> dict[str, Any]:
    """The example as our connected location would receive it: only the location ids change."""
    moved = dict(body)
    for field in ("locationId", "altId"):
        if field in moved:
            moved[field] = LOCATION
    return moved


async def test_every_documented_webhook_example_is_accepted_and_handled_as_documented(stack: Stack) -> None:
    documented = examples()
    assert len(documented) == 15 and all(documented.values())
    answers: dict[str, str] = {}
    for name, bodies in documented.items():
        for body in bodies:
            raw, headers = signed(stack, at_our_location(body))
            response = await post(stack, raw, headers)
            if "locationId" not in body and "altId" not in body:
                # a company-level event (AppInstall/AppUninstall without a location) belongs to no account:
                # only HighLevel's published key can vouch for it, and the test signs as the sandbox
                assert response.status_code == 401, (name, response.text)
                continue
            assert response.status_code == 200, (name, response.text)
            answers[name] = response.json()["status"]
    await stack.settle()

    # invoice events (documented without `type`) and order events are stored, contact events go to the contact
    # directory at once; the rest are not used here
    handled = {n for n in documented if n.startswith(("Invoice", "Order"))}
    contacts = {n for n in documented if n.startswith("Contact")}
    assert {n for n, status in answers.items() if status in ("stored", "duplicate")} == handled
    assert {n for n, status in answers.items() if status == "applied"} == contacts
    assert {n for n, status in answers.items() if status == "ignored"} == set(documented) - handled - contacts
    changes: list[InvoiceChange] = stack.calls("on_invoice_change")
    seen = {(c.kind, c.invoice.status) for c in changes}
    # InvoiceCreate and InvoiceUpdate document the same draft; InvoiceDelete's status "delete" is a delete
    assert seen == {
        ("updated", "draft"),
        ("sent", "sent"),
        ("partially_paid", "partially_paid"),
        ("paid", "paid"),
        ("voided", "void"),
        ("deleted", "deleted"),
    }
    paid = next(c for c in changes if c.kind == "paid")
    assert paid.invoice.number == "19" and paid.invoice.amount_paid.amount == paid.invoice.total.amount
    assert await stack.runtime.store.list_deliveries("acme", "dead") == []


async def test_a_sandbox_sending_the_documented_bare_invoice_shapes_is_followed(stack: Stack) -> None:
    stack.engine.config.documented_invoice_webhooks = True
    contact = await stack.contact("billing@example.com")
    items = [{"name": "Design", "qty": 1, "amount": 100}]
    kept = await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": items, "send": True})
    dropped = await stack.control("POST", "/invoices", {"contactId": contact["id"], "items": items, "send": True})
    await stack.wait_for("on_invoice_change", 2)
    await stack.control("POST", f"/invoices/{kept['_id']}/void")
    await stack.control("DELETE", f"/invoices/{dropped['_id']}")
    await stack.wait_for("on_invoice_change", 4)
    await stack.settle()

    bodies = [d["body"] for d in stack.engine.webhooks.deliveries if d["type"].startswith("Invoice")]
    assert bodies and all("type" not in b and "webhookId" not in b and "timestamp" not in b for b in bodies)
    assert any(b["status"] == "delete" for b in bodies)
    last: dict[str, str] = {}
    for change in stack.calls("on_invoice_change"):
        last[change.invoice.invoice_id] = change.kind
    assert last == {kept["_id"]: "voided", dropped["_id"]: "deleted"}  # a delete is never read as an update
