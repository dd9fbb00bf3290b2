"""QuickBooks → CRM: contact import, webhooks (legacy and CloudEvents), CDC, first invoice paid."""

from __future__ import annotations

import json
from typing import Any

from ledgerbridge_quickbooks.sandbox import sign
from ledgerbridge_quickbooks.settings import SANDBOX_VERIFIER_TOKEN

from .conftest import Harness


def _customer(harness: Harness, name: str, email: str) -> dict[str, Any]:
    return harness.sandbox.books(harness.realm).create(
        "Customer", {"DisplayName": name, "PrimaryEmailAddr": {"Address": email}}
    )


def _invoice(harness: Harness, customer: dict[str, Any], amount: float, txn_date: str) -> dict[str, Any]:
    return harness.sandbox.books(harness.realm).create("Invoice", {
        "CustomerRef": {"value": customer["Id"]}, "TxnDate": txn_date,
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": amount, "SalesItemLineDetail": {"Qty": 1,
                  "UnitPrice": amount}}],
    })  # fmt: skip


def _pay(harness: Harness, invoice: dict[str, Any], amount: float | None = None) -> None:
    books = harness.sandbox.books(harness.realm)
    current = books.get("Invoice", invoice["Id"])
    value = current["Balance"] if amount is None else amount
    books.create("Payment", {
        "CustomerRef": current["CustomerRef"], "TotalAmt": value,
        "Line": [{"Amount": value, "LinkedTxn": [{"TxnId": current["Id"], "TxnType": "Invoice"}]}],
    })  # fmt: skip


async def test_initial_import_publishes_every_customer_and_shows_progress(harness: Harness) -> None:
    realm = next(iter(harness.sandbox.companies))
    books = harness.sandbox.books(realm)
    for n in range(25):
        books.create("Customer", {"DisplayName": f"Customer {n}", "PrimaryEmailAddr": {"Address": f"c{n}@example.com"}})
    await harness.connect()
    await harness.until(lambda: len(harness.crm.contacts) >= 25)
    await harness.settle()
    assert sorted(s.contact.email or "" for s in harness.crm.contacts) == sorted(f"c{n}@example.com" for n in range(25))
    assert {s.kind for s in harness.crm.contacts} == {"imported"}
    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    card = await harness.runtime.plugins.card("quickbooks", ctx)
    assert card is not None and card.progress is None  # import done
    assert {f.label: f.value for f in card.fields}["Contacts imported"] == "25"


async def test_new_and_changed_customers_arrive_by_webhook_and_repeats_dedupe(harness: Harness) -> None:
    await harness.connect()
    created = _customer(harness, "Katherine Johnson", "kj@example.com")
    await harness.until(lambda: any(s.source_id == created["Id"] for s in harness.crm.contacts))
    books = harness.sandbox.books(harness.realm)
    books.update("Customer", {"Id": created["Id"], "SyncToken": "0", "GivenName": "Katherine"}, sparse=True)
    await harness.until(lambda: any(s.contact.given_name == "Katherine" for s in harness.crm.contacts))
    await harness.settle()
    kinds = [s.kind for s in harness.crm.contacts if s.source_id == created["Id"]]
    assert kinds == ["created", "updated"]
    # the reconciler sees the same versions through CDC: nothing is published twice
    from ledgerbridge_quickbooks import contacts_import

    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    await contacts_import.run(ctx, harness.service)
    await harness.settle()
    assert [s.kind for s in harness.crm.contacts if s.source_id == created["Id"]] == ["created", "updated"]


async def test_cdc_reconciliation_catches_a_missed_webhook(harness: Harness) -> None:
    await harness.connect()
    await harness.settle()
    from ledgerbridge_quickbooks import contacts_import

    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    await contacts_import.run(ctx, harness.service)  # import done, watermark set
    for app in harness.sandbox.apps.values():
        app.webhook_url = None  # webhooks lost
    missed = _customer(harness, "Dorothy Vaughan", "dv@example.com")
    await contacts_import.run(ctx, harness.service)
    await harness.until(lambda: any(s.source_id == missed["Id"] for s in harness.crm.contacts))


async def test_webhook_signature_bodies_and_quarantine(harness: Harness) -> None:
    await harness.connect()
    url = f"{harness.url}/plugins/quickbooks/webhooks"
    customer = _customer(harness, "Mary Jackson", "mj@example.com")
    legacy = json.dumps(
        {
            "eventNotifications": [
                {
                    "realmId": harness.realm,
                    "dataChangeEvent": {
                        "entities": [
                            {
                                "name": "Customer",
                                "id": customer["Id"],
                                "operation": "Create",
                                "lastUpdated": "2026-01-01T00:00:00Z",
                            }
                        ]
                    },
                }
            ]
        }
    )
    bad = await harness.http.post(url, content=legacy, headers={"intuit-signature": "bm9wZQ=="})
    assert bad.status_code == 401
    good = await harness.http.post(
        url, content=legacy, headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, legacy.encode())}
    )
    assert good.status_code == 200 and good.json()["accepted"] == 1
    cloud = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "ce-1",
                "source": "intuit",
                "type": "qbo.customer.updated.v1",
                "time": "2026-01-01T00:00:00Z",
                "intuitentityid": customer["Id"],
                "intuitaccountid": harness.realm,
            }
        ]
    )
    answer = await harness.http.post(
        url, content=cloud, headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, cloud.encode())}
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 1
    unknown = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": "ce-2",
                "type": "qbo.customer.created.v1",
                "intuitentityid": "1",
                "intuitaccountid": "999",
            },
            {"type": "garbage"},
        ]
    )
    answer = await harness.http.post(
        url, content=unknown, headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, unknown.encode())}
    )
    assert answer.status_code == 200 and answer.json() == {"accepted": 0, "quarantined": 2}
    junk = b"not json"
    answer = await harness.http.post(
        url, content=junk, headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, junk)}
    )
    assert answer.status_code == 200 and answer.json()["quarantined"] == 1
    broken = json.dumps({"eventNotifications": [{"realmId": harness.realm, "dataChangeEvent": {"entities": "x"}}]})
    answer = await harness.http.post(
        url, content=broken, headers={"intuit-signature": sign(SANDBOX_VERIFIER_TOKEN, broken.encode())}
    )
    assert answer.status_code == 200 and answer.json()["quarantined"] == 1
    assert any(m.startswith("quarantined: unusable QuickBooks webhook entry") for m in await harness.activity())
    await harness.until(lambda: any(s.source_id == customer["Id"] for s in harness.crm.contacts))


async def test_first_invoice_paid_fires_once_per_customer_and_never_for_void_or_second(harness: Harness) -> None:
    await harness.connect()
    ada = _customer(harness, "Ada", "ada@example.com")
    first = _invoice(harness, ada, 100.0, "2026-01-01")
    second = _invoice(harness, ada, 50.0, "2026-02-01")
    _pay(harness, second)  # the second invoice paid first: not the customer's first invoice
    await harness.webhooks_delivered()
    assert harness.crm.first_paid == []
    _pay(harness, first, 40.0)  # partly paid: not yet
    await harness.webhooks_delivered()
    assert harness.crm.first_paid == []
    _pay(harness, first)
    await harness.until(lambda: len(harness.crm.first_paid) == 1)
    event = harness.crm.first_paid[0]
    assert (
        event.customer_id == ada["Id"] and event.invoice_id == first["Id"] and event.contact.email == "ada@example.com"
    )
    # voided invoices (balance 0) never trigger one
    grace = _customer(harness, "Grace", "grace@example.com")
    voided = _invoice(harness, grace, 80.0, "2026-01-05")
    books = harness.sandbox.books(harness.realm)
    books.void("Invoice", {"Id": voided["Id"], "SyncToken": books.get("Invoice", voided["Id"])["SyncToken"]})
    await harness.webhooks_delivered()
    assert len(harness.crm.first_paid) == 1
    # every notification about those payments (Intuit's payment lines carry no DetailType) was processed
    counts = await harness.settle()
    assert counts.keys() <= {"done", "skipped"}, counts


async def test_a_first_invoice_paid_while_reviews_are_off_never_asks_later(harness: Harness) -> None:
    await harness.connect()
    reviews = await harness.runtime.account_context("acme", "reviews")
    assert reviews is not None
    await reviews.update_settings(enabled=False)
    alan = _customer(harness, "Alan", "alan@example.com")
    paid = _invoice(harness, alan, 10.0, "2026-01-01")
    _pay(harness, paid)
    await harness.webhooks_delivered()
    await harness.settle()
    assert harness.crm.first_paid == []
    # switched on afterwards: that moment has passed, and an edit of the paid invoice asks nothing either
    await reviews.update_settings(enabled=True)
    books = harness.sandbox.books(harness.realm)
    current = books.get("Invoice", paid["Id"])
    books.update("Invoice", {"Id": paid["Id"], "SyncToken": current["SyncToken"], "PrivateNote": "edited"}, sparse=True)
    second = _invoice(harness, alan, 20.0, "2026-02-01")
    _pay(harness, second)
    await harness.webhooks_delivered()
    await harness.settle()
    assert harness.crm.first_paid == []
    assert any("while review requests were off" in m for m in await harness.activity())
