"""What a QuickBooks customer costs in CRM API calls on its way to a contact, counted by the sandbox's rate
limiter (what HighLevel counts against the location's 100 requests per 10 s): an import is bound by it."""

from __future__ import annotations

from ledgerbridge import Contact, ContactSync

from tests.crmconnect.conftest import LOCATION, Stack
from tests.crmconnect.test_calls_per_payment import count_api_calls, quiet
from tests.crmconnect.test_contacts import crm_contacts, publish


async def test_a_customer_the_crm_does_not_have_costs_one_upsert_and_keeps_its_name(stack: Stack) -> None:
    await quiet(stack)
    calls = count_api_calls(stack)
    for n in range(5):
        sync = ContactSync(
            kind="imported", contact=Contact(name=f"Imported Person{n}", email=f"p{n}@example.com"), source_id=f"{n}"
        )
        await publish(stack, f"qb-{n}-v1", sync)

    # the location's contacts listed once (the contact directory), then the upsert, which keeps to the location's rule
    assert calls() == 1 + 5
    contacts = sorted(crm_contacts(stack), key=lambda c: str(c["email"]))
    assert [(c["firstName"], c["lastName"], c["email"]) for c in contacts] == [
        ("Imported", f"Person{n}", f"p{n}@example.com") for n in range(5)
    ]
    account = await stack.account()
    for n, contact in enumerate(contacts):
        link = await account.get_link("customer", f"{n}")
        assert link is not None and link.remote_id == contact["id"]


async def test_a_contact_the_crm_already_has_is_updated_not_doubled_nor_renamed(stack: Stack) -> None:
    await quiet(stack)
    existing = await stack.contact("ada@example.com")
    calls = count_api_calls(stack)
    sync = ContactSync(
        kind="imported", contact=Contact(name="Augusta King", email="Ada@Example.com", phone="+15555550100"),
        source_id="qb-1",
    )  # fmt: skip
    await publish(stack, "qb-1-v1", sync)

    assert [c["id"] for c in crm_contacts(stack)] == [existing["id"]]
    contact = stack.engine.state.contacts[existing["id"]]
    assert (contact["firstName"], contact["lastName"], contact["phone"]) == ("Ada", "Lovelace", "+15555550100")
    assert calls() == 2  # the listing that fills the contact directory, the update


async def test_a_linked_contact_deleted_in_the_crm_is_made_again_once(stack: Stack) -> None:
    sync = ContactSync(kind="imported", contact=Contact(name="Grace Hopper", email="grace@navy.mil"), source_id="7")
    await publish(stack, "qb-7-v1", sync)
    [first] = crm_contacts(stack)
    await stack.control("DELETE", f"/contacts/{first['id']}")

    changed = ContactSync(
        kind="updated", contact=Contact(name="Grace Hopper", email="grace@navy.mil", phone="+15555550199"),
        source_id="7",
    )  # fmt: skip
    await publish(stack, "qb-7-v2", changed)

    [again] = crm_contacts(stack)
    assert again["id"] != first["id"] and again["phone"] == "+15555550199"
    assert (again["firstName"], again["lastName"], again["locationId"]) == ("Grace", "Hopper", LOCATION)
    link = await (await stack.account()).get_link("customer", "7")
    assert link is not None and link.remote_id == again["id"]
