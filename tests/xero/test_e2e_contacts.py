"""Xero contacts → the CRM: the initial import (paged), then webhooks, then If-Modified-Since catch-up."""

from __future__ import annotations

from .conftest import ACCOUNT, US, Harness


async def test_contacts_already_in_xero_are_imported_into_the_crm_page_by_page(harness: Harness) -> None:
    books = harness.sandbox.by_name(US)
    for n in range(130):
        books.save_contact({"Name": f"Customer {n:03d}", "EmailAddress": f"c{n}@example.com"})
    await harness.connect()
    await harness.settle()
    imported = [s for s in harness.crm.contacts if s.kind == "imported"]
    assert len(imported) == 130
    assert {s.contact.email for s in imported} == {f"c{n}@example.com" for n in range(130)}
    assert all(s.source_id == s.contact.accounting_id for s in imported)
    pages = [r for r in harness.sandbox.requests if r.path.endswith("/Contacts") and r.method == "GET"]
    assert len(pages) >= 2


async def test_a_contact_created_in_xero_reaches_the_crm_through_a_signed_webhook(harness: Harness) -> None:
    await harness.connect()
    made = await harness.control("POST", "/contacts", {"Name": "Katherine Johnson", "EmailAddress": "kj@example.com",
                                                       "Phones": [{"PhoneType": "MOBILE", "PhoneNumber": "555-0100"}]})  # fmt: skip
    await harness.webhooks_delivered()
    [sync] = [s for s in harness.crm.contacts if s.source_id == made["ContactID"]]
    assert (sync.kind, sync.contact.name, sync.contact.email, sync.contact.phone) == (
        "created",
        "Katherine Johnson",
        "kj@example.com",
        "555-0100",
    )
    await harness.control("POST", f"/contacts/{made['ContactID']}", {"EmailAddress": "katherine@example.com"})
    await harness.webhooks_delivered()
    assert (
        harness.crm.contacts[-1].kind == "updated" and harness.crm.contacts[-1].contact.email == "katherine@example.com"
    )


async def test_changes_missed_by_webhooks_are_caught_up_with_if_modified_since(harness: Harness) -> None:
    await harness.connect()
    harness.sandbox.dispatcher.subscriptions.clear()  # webhooks lost: only the periodic catch-up remains
    made = harness.books.save_contact({"Name": "Dorothy Vaughan", "EmailAddress": "dv@example.com"})
    harness.books.events.clear()
    [task] = harness.xero.background_tasks(harness.runtime.plugin_context("xero"))
    ctx = await harness.runtime.plugin_context("xero").account(ACCOUNT)
    assert ctx is not None
    await task.run(ctx)
    await harness.settle()
    assert [s.kind for s in harness.crm.contacts if s.source_id == made["ContactID"]] == ["updated"]
    [last] = harness.sandbox.requests[-1:]
    assert last.path.endswith("/Contacts") and "if-modified-since" in last.headers
    await task.run(ctx)  # nothing new: nothing published again
    await harness.settle()
    assert len([s for s in harness.crm.contacts if s.source_id == made["ContactID"]]) == 1
