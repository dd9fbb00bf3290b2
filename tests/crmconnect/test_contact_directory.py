"""The CRM contact directory: an import costs one CRM call a contact, never makes a duplicate, and a CRM that
will not list its contacts still gets everyone once, the old way (two calls a contact).

Calls are counted at the sandbox: what its rate limiter admits for the location (what HighLevel counts) and,
per route, what its contact API answered."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from ledgerbridge import Contact, ContactSync
from ledgerbridge_crmconnect import directory
from ledgerbridge_crmconnect.client import CrmClient, StaticToken
from ledgerbridge_crmconnect.sandbox import contacts as sandbox_contacts

from tests.crmconnect.conftest import LOCATION, TOKEN, Stack
from tests.crmconnect.test_calls_per_payment import count_api_calls, quiet
from tests.crmconnect.test_contacts import crm_contacts, publish


async def import_customers(stack: Stack, customers: list[tuple[str, str, str]], version: str = "v1") -> None:
    """(QuickBooks id, name, e-mail) imported one after the other, each to the end of its delivery."""
    for source_id, name, email in customers:
        sync = ContactSync(kind="imported", contact=Contact(name=name, email=email), source_id=source_id)
        await publish(stack, f"qb-{source_id}-{version}", sync)


async def route_calls(stack: Stack) -> dict[str, int]:
    calls: dict[str, int] = (await stack.control("GET", "/contacts/calls"))["calls"]
    return calls


async def count_from_now(stack: Stack) -> Any:
    await stack.control("DELETE", "/contacts/calls")
    return count_api_calls(stack)


def emails(stack: Stack) -> list[str]:
    return sorted(str(c["email"]).lower() for c in crm_contacts(stack) if c.get("email"))


async def test_an_import_updates_the_contacts_the_crm_has_and_creates_the_rest_at_one_call_each(stack: Stack) -> None:
    await quiet(stack)
    held = {n: await stack.contact(f"held{n}@example.com", firstName="Held", lastName=f"Person{n}") for n in range(3)}
    await stack.settle()
    calls = await count_from_now(stack)

    await import_customers(
        stack,
        [(f"h{n}", f"Books Name{n}", f"HELD{n}@Example.com") for n in range(3)]
        + [(f"n{n}", f"New Person{n}", f"new{n}@example.com") for n in range(3)],
    )

    assert emails(stack) == [f"held{n}@example.com" for n in range(3)] + [f"new{n}@example.com" for n in range(3)]
    for n, contact in held.items():  # updated in place, never renamed from QuickBooks
        kept = stack.engine.state.contacts[contact["id"]]
        assert (kept["firstName"], kept["lastName"]) == ("Held", f"Person{n}")
        link = await (await stack.account()).get_link("customer", f"h{n}")
        assert link is not None and link.remote_id == contact["id"]
    # one listing of the location, then one upsert a customer: with the customer's names only for the new ones
    assert await route_calls(stack) == {"POST /contacts/search": 1, "POST /contacts/upsert": 6}
    assert calls() == 1 + 6


async def test_a_contact_created_in_the_crm_after_the_listing_is_found_through_its_webhook(stack: Stack) -> None:
    await quiet(stack)
    await import_customers(stack, [("1", "First Customer", "first@example.com")])  # fills the directory
    late = await stack.contact("late@example.com", firstName="Late", lastName="Comer")
    await stack.settle()  # its ContactCreate webhook has been delivered
    calls = await count_from_now(stack)

    await import_customers(stack, [("2", "Books Name", "late@example.com")])

    assert emails(stack) == ["first@example.com", "late@example.com"]
    assert await route_calls(stack) == {"POST /contacts/upsert": 1}
    assert calls() == 1
    link = await (await stack.account()).get_link("customer", "2")
    assert link is not None and link.remote_id == late["id"]
    # known to the directory, so updated without names: not renamed "Books Name"
    assert stack.engine.state.contacts[late["id"]]["firstName"] == "Late"


async def test_a_contact_given_another_email_before_its_webhook_arrives_keeps_it(stack: Stack) -> None:
    await quiet(stack)
    moved = await stack.contact("old@example.com", firstName="Moved", lastName="Person")
    await import_customers(stack, [("1", "First Customer", "first@example.com")])  # the listing sees old@
    await stack.control("PUT", "/webhook-url", {"url": None})  # the CRM's webhooks stop reaching the server
    await stack.control("PUT", f"/contacts/{moved['id']}", {"email": "moved@example.com"})
    calls = await count_from_now(stack)

    await import_customers(stack, [("2", "Old Address", "old@example.com")])

    # the CRM matched no contact with old@: a new one is made (and named), the moved contact keeps its e-mail
    assert stack.engine.state.contacts[moved["id"]]["email"] == "moved@example.com"
    assert emails(stack) == ["first@example.com", "moved@example.com", "old@example.com"]
    [made] = [c for c in crm_contacts(stack) if c["email"] == "old@example.com"]
    assert (made["firstName"], made["lastName"]) == ("Old", "Address")
    assert await route_calls(stack) == {"POST /contacts/upsert": 1, "PUT /contacts/{id}": 1}
    assert calls() == 2
    link = await (await stack.account()).get_link("customer", "2")
    assert link is not None and link.remote_id == made["id"]


async def test_a_contact_deleted_or_given_another_email_in_the_crm_leaves_the_directory(stack: Stack) -> None:
    await quiet(stack)
    await import_customers(stack, [("1", "First Customer", "first@example.com")])
    gone = await stack.contact("gone@example.com")
    moved = await stack.contact("old@example.com")
    await stack.settle()
    await stack.control("DELETE", f"/contacts/{gone['id']}")
    await stack.control("PUT", f"/contacts/{moved['id']}", {"email": "moved@example.com"})
    await stack.settle()
    calls = await count_from_now(stack)

    await import_customers(stack, [("2", "Gone Person", "gone@example.com"), ("3", "Old Address", "old@example.com")])

    # neither e-mail is in the CRM any more: each is created (one upsert), the moved contact keeps its new e-mail
    assert await route_calls(stack) == {"POST /contacts/upsert": 2}
    assert calls() == 2
    assert stack.engine.state.contacts[moved["id"]]["email"] == "moved@example.com"
    assert emails(stack) == ["first@example.com", "gone@example.com", "moved@example.com", "old@example.com"]


async def test_a_crm_that_refuses_the_listing_gets_everyone_once_at_two_calls_each(stack: Stack) -> None:
    await quiet(stack)
    held = await stack.contact("held@example.com")
    await stack.settle()
    # the first CRM call of the import is the listing: this CRM answers it 404
    await stack.control("POST", "/faults", {"failNext": 1, "status": 404})
    calls = await count_from_now(stack)

    await import_customers(
        stack,
        [("h", "Books Name", "held@example.com")] + [(f"{n}", f"Person {n}", f"p{n}@example.com") for n in range(4)],
    )

    assert emails(stack) == ["held@example.com"] + [f"p{n}@example.com" for n in range(4)]
    link = await (await stack.account()).get_link("customer", "h")
    assert link is not None and link.remote_id == held["id"]
    answered = await route_calls(stack)
    assert answered["GET /contacts/search/duplicate"] == 5 and "POST /contacts/search" not in answered  # the fault
    assert calls() == 1 + 2 * 5
    state = await directory.state(await stack.account(), LOCATION)
    assert state is not None and state.status == "refused"

    # refused for a day: the next customer is not a reason to list again
    calls = await count_from_now(stack)
    await import_customers(stack, [("9", "Later Person", "later@example.com")])
    assert calls() == 2 and "POST /contacts/search" not in await route_calls(stack)


async def test_a_location_allowing_duplicates_gets_none_from_an_import_even_before_a_webhook_arrives(
    stack: Stack,
) -> None:
    await quiet(stack)
    await stack.control("PUT", f"/locations/{LOCATION}/settings", {"allowDuplicateContact": True})
    await import_customers(stack, [("1", "First Customer", "first@example.com")])  # fills the directory
    await stack.control("PUT", "/webhook-url", {"url": None})  # the CRM's webhooks stop reaching the server
    unseen = await stack.contact("unseen@example.com", firstName="Un", lastName="Seen")
    async with httpx.AsyncClient(base_url=stack.sandbox_url, headers=api_headers()) as api:
        # what a create would do here: this location accepts a second contact with the same e-mail
        twin = await api.post("/contacts/", json={"locationId": LOCATION, "email": "twin@example.com"})
        again = await api.post("/contacts/", json={"locationId": LOCATION, "email": "twin@example.com"})
        assert twin.status_code == again.status_code == 201
    calls = await count_from_now(stack)

    await import_customers(stack, [("2", "Books Name", "unseen@example.com")])

    # the directory has not heard of the contact, so the import upserts: the upsert matches the e-mail
    assert [c["id"] for c in crm_contacts(stack) if c["email"] == "unseen@example.com"] == [unseen["id"]]
    assert await route_calls(stack) == {"POST /contacts/upsert": 1}
    assert calls() == 1


async def test_the_listing_pages_through_a_location_of_more_than_one_page(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await quiet(stack)
    monkeypatch.setattr(stack.engine, "emit", lambda *args: None)  # no 1,100 webhooks: the listing alone
    with stack.engine.lock:
        for n in range(1_100):
            sandbox_contacts.create(stack.engine, LOCATION, {"email": f"c{n}@example.com", "firstName": f"C{n}"})
    calls = await count_from_now(stack)

    await import_customers(stack, [("1", "Books Name", "c1050@example.com"), ("2", "New One", "new@example.com")])

    assert await route_calls(stack) == {"POST /contacts/search": 3, "POST /contacts/upsert": 2}
    assert (
        stack.engine.state.contacts[next(c["id"] for c in crm_contacts(stack) if c["email"] == "c1050@example.com")][
            "firstName"
        ]
        == "C1050"
    )
    assert calls() == 3 + 2
    assert len(crm_contacts(stack)) == 1_101
    state = await directory.state(await stack.account(), LOCATION)
    assert state is not None and (state.status, state.contacts) == ("complete", 1_100)


def api_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}


async def test_the_sandbox_search_keeps_to_its_documented_limits(stack: Stack) -> None:
    other = await stack.control("POST", "/locations", {"name": "Other"})
    await stack.control("POST", "/contacts", {"locationId": other["id"], "email": "elsewhere@example.com"})
    for n in range(7):
        await stack.contact(f"s{n}@example.com")
    async with httpx.AsyncClient(base_url=stack.sandbox_url, headers=api_headers()) as api:
        too_big = await api.post("/contacts/search", json={"locationId": LOCATION, "pageLimit": 501})
        too_far = await api.post("/contacts/search", json={"locationId": LOCATION, "pageLimit": 500, "page": 21})
        elsewhere = await api.post("/contacts/search", json={"locationId": other["id"], "pageLimit": 10})
        seen: list[str] = []
        after = None
        while True:
            body: dict[str, Any] = {"locationId": LOCATION, "pageLimit": 3}
            if after is not None:
                body["searchAfter"] = after
            page = (await api.post("/contacts/search", json=body)).json()
            seen += [c["email"] for c in page["contacts"]]
            if len(page["contacts"]) < 3:
                break
            after = page["contacts"][-1]["searchAfter"]
        by_page = (await api.post("/contacts/search", json={"locationId": LOCATION, "pageLimit": 5, "page": 2})).json()

    assert too_big.status_code == 422 and too_far.status_code == 422
    assert elsewhere.status_code == 403  # a token reaches its own location only
    assert seen == [f"s{n}@example.com" for n in range(7)] and page["total"] == 7
    assert [c["email"] for c in by_page["contacts"]] == ["s5@example.com", "s6@example.com"]


@pytest.mark.parametrize(
    ("status", "answer"),
    [
        (404, {"message": "Not Found"}),
        (422, {"message": ["property pageLimit should not exist"]}),
        (200, {"items": []}),
    ],
)
async def test_a_listing_refused_or_in_an_unknown_shape_means_no_directory(status: int, answer: Any) -> None:
    def crm(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/contacts/search"
        return httpx.Response(status, json=answer)

    async with httpx.AsyncClient(transport=httpx.MockTransport(crm)) as http:
        client = CrmClient("https://crm.test", StaticToken("t"), http=http)
        with pytest.raises(directory.Refused):
            await directory.search_page(client, LOCATION, None)
