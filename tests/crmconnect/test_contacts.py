"""QuickBooks customers (ContactSync events) reach CRM contacts by their link first, by e-mail second."""

from __future__ import annotations

from ledgerbridge import Contact, ContactSync

from tests.crmconnect.conftest import ACCOUNT, LOCATION, Stack


def crm_contacts(stack: Stack) -> list[dict[str, object]]:
    return [c for c in stack.engine.state.contacts.values() if c["locationId"] == LOCATION]


async def publish(stack: Stack, event_id: str, sync: ContactSync) -> None:
    producer = await stack.producer()
    assert await producer.publish(sync, external_id=event_id)
    await stack.wait_for("on_contact_sync", len(stack.calls("on_contact_sync")) + 1)
    counts = await stack.settle()
    assert counts.get("dead", 0) == 0, counts


async def test_an_existing_contact_is_matched_by_email_in_any_case(stack: Stack) -> None:
    existing = await stack.contact("ada@example.com")
    sync = ContactSync(
        kind="imported",
        contact=Contact(name="Ada King", email="ADA@Example.COM", phone="+15555550100", company_name="Analytical"),
        source_id="qb-1",
    )
    await publish(stack, "qb-1-v1", sync)

    assert len(crm_contacts(stack)) == 1
    contact = stack.engine.state.contacts[existing["id"]]
    assert (contact["firstName"], contact["lastName"]) == ("Ada", "Lovelace")  # the CRM owns its names
    assert contact["phone"] == "+15555550100"
    account = await stack.account()
    link = await account.get_link("customer", "qb-1")
    assert link is not None and link.remote_id == existing["id"]


async def test_a_new_customer_becomes_a_contact_once_even_when_repeated(stack: Stack) -> None:
    sync = ContactSync(kind="created", contact=Contact(name="Grace Hopper", email="grace@navy.mil"), source_id="qb-2")
    await publish(stack, "qb-2-v1", sync)
    await publish(stack, "qb-2-v2", sync)

    contacts = crm_contacts(stack)
    assert [(c["firstName"], c["lastName"], c["email"]) for c in contacts] == [("Grace", "Hopper", "grace@navy.mil")]
    assert contacts[0]["source"] == "QuickBooks"


async def test_a_customer_without_email_is_imported_and_then_updated_through_its_link(stack: Stack) -> None:
    first = ContactSync(kind="imported", contact=Contact(name="Corner Shop", company_name="Corner Shop"), source_id="9")
    await publish(stack, "qb-9-v1", first)
    contacts = crm_contacts(stack)
    assert len(contacts) == 1 and contacts[0]["companyName"] == "Corner Shop"

    renamed = ContactSync(
        kind="updated",
        contact=Contact(name="Corner Shop Ltd", company_name="Corner Shop Ltd", phone="+15555550123"),
        source_id="9",
    )
    await publish(stack, "qb-9-v2", renamed)
    contacts = crm_contacts(stack)
    assert len(contacts) == 1
    assert contacts[0]["companyName"] == "Corner Shop"  # the CRM owns its contacts' names
    assert contacts[0]["phone"] == "+15555550123"  # the rest follows QuickBooks through the link


async def test_an_inactive_customer_keeps_its_contact_tagged_until_it_is_active_again(stack: Stack) -> None:
    for source_id, email in (("1", "a@example.com"), ("2", "b@example.com")):
        sync = ContactSync(kind="imported", contact=Contact(name=email, email=email), source_id=source_id)
        await publish(stack, f"qb-{source_id}", sync)
    account = await stack.account()
    linked = await account.get_link("customer", "2")
    assert linked is not None

    inactive = ContactSync(kind="deleted", contact=Contact(name="b", email="b@example.com"), source_id="2")
    await publish(stack, "qb-2-del", inactive)
    assert len(crm_contacts(stack)) == 2
    assert "quickbooks-inactive" in stack.engine.state.contacts[linked.remote_id]["tags"]
    again = ContactSync(kind="updated", contact=Contact(name="b", email="b@example.com"), source_id="2")
    await publish(stack, "qb-2-again", again)
    assert "quickbooks-inactive" not in stack.engine.state.contacts[linked.remote_id]["tags"]
    assert len(crm_contacts(stack)) == 2

    unknown = ContactSync(kind="deleted", contact=Contact(name="c"), source_id="9")
    await publish(stack, "qb-9-del", unknown)
    counts = await stack.runtime.store.count_deliveries(ACCOUNT)
    assert counts.get("skipped", 0) >= 1 and counts.get("dead", 0) == 0


async def test_an_email_changed_in_quickbooks_updates_the_linked_contact(stack: Stack) -> None:
    before = ContactSync(kind="imported", contact=Contact(name="Sam Same", email="sam@example.com"), source_id="7")
    await publish(stack, "qb-7-v1", before)
    after = ContactSync(kind="updated", contact=Contact(name="Sam Same", email="sam.new@example.com"), source_id="7")
    await publish(stack, "qb-7-v2", after)

    contacts = crm_contacts(stack)
    assert [c["email"] for c in contacts] == ["sam.new@example.com"]  # the same contact, not a second one
    account = await stack.account()
    link = await account.get_link("customer", "7")
    assert link is not None and link.remote_id == contacts[0]["id"]


async def test_a_quickbooks_name_never_renames_a_crm_contact(stack: Stack) -> None:
    existing = await stack.contact("sam.b@example.com", firstName="Sam", lastName="Same")
    suffixed = Contact(name="Sam Same (sam.b@example.com)", email="sam.b@example.com", company_name="Same & Co")
    await publish(stack, "qb-8-v1", ContactSync(kind="created", contact=suffixed, source_id="8"))
    await publish(stack, "qb-8-v2", ContactSync(kind="updated", contact=suffixed, source_id="8"))

    (contact,) = crm_contacts(stack)
    assert contact["id"] == existing["id"]
    assert (contact["firstName"], contact["lastName"]) == ("Sam", "Same")
    assert "(" not in str(contact.get("name") or "") and not contact.get("companyName")
