"""The import writes each page's links together; what they answer afterwards is what per-customer writes gave."""

from __future__ import annotations

from ledgerbridge_quickbooks import contacts_import, customers

from .conftest import Harness


async def test_an_imported_page_leaves_every_contact_counted_and_the_first_customer_of_an_email_listed(
    harness: Harness,
) -> None:
    books = harness.sandbox.books(next(iter(harness.sandbox.companies)))
    made = [
        books.create("Customer", {"DisplayName": f"Customer {n}", "PrimaryEmailAddr": {"Address": f"c{n}@example.com"}})
        for n in range(30)
    ]
    twin = books.create("Customer", {"DisplayName": "Shared Inbox", "PrimaryEmailAddr": {"Address": "C3@example.com"}})
    gone = books.create("Customer", {"DisplayName": "Closed Shop", "PrimaryEmailAddr": {"Address": "shut@example.com"}})
    books.update("Customer", {"Id": gone["Id"], "SyncToken": gone["SyncToken"], "Active": False}, sparse=True)
    await harness.connect()
    await harness.until(lambda: len({s.source_id for s in harness.crm.contacts}) >= 31)
    await harness.settle()

    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    assert await ctx.count_links(contacts_import.CONTACT_LINK) == 31
    link = await ctx.get_link(contacts_import.CONTACT_LINK, made[7]["Id"])
    assert link is not None and link.data["version"] == made[7]["MetaData"]["LastUpdatedTime"]
    listed = await ctx.get_link(customers.LINK, "c3@example.com")
    assert listed is not None and listed.remote_id == made[3]["Id"] != twin["Id"]  # the first one keeps the e-mail
    assert await ctx.get_link(customers.LINK, "shut@example.com") is None  # inactive: not imported, nobody's customer
    assert len(harness.crm.contacts) == 31  # each active customer once (QuickBooks' query leaves inactive ones out)


async def test_a_customer_changed_after_the_import_still_follows(harness: Harness) -> None:
    books = harness.sandbox.books(next(iter(harness.sandbox.companies)))
    made = books.create("Customer", {"DisplayName": "Mary Jackson", "PrimaryEmailAddr": {"Address": "mj@example.com"}})
    await harness.connect()
    await harness.until(lambda: any(s.source_id == made["Id"] for s in harness.crm.contacts))
    books.update("Customer", {"Id": made["Id"], "SyncToken": made["SyncToken"], "GivenName": "Mary"}, sparse=True)
    await harness.until(lambda: any(s.contact.given_name == "Mary" for s in harness.crm.contacts))
    await harness.settle()

    assert [s.kind for s in harness.crm.contacts if s.source_id == made["Id"]] == ["imported", "updated"]
    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    link = await ctx.get_link(contacts_import.CONTACT_LINK, made["Id"])
    current = books.get("Customer", made["Id"])
    assert link is not None and link.data["version"] == current["MetaData"]["LastUpdatedTime"]
