"""The CRM sandbox's pages over ASGI: each form changes the state and sends the webhooks the control API sends;
a bad form is a 4xx page that names the problem and writes nothing."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ledgerbridge_crmconnect.sandbox import SandboxEngine, create_app

from tests.crmconnect_sandbox.conftest import LOCATION, OTHER_LOCATION, Receiver, make_config

HOME = f"/locations/{LOCATION}"
LINE = {"line0_name": "Coaching session", "line0_qty": "1", "line0_price": "120", "line0_tax": "10"}


@dataclass
class Pages:
    client: httpx.AsyncClient
    engine: SandboxEngine
    receiver: Receiver

    async def post(self, path: str, form: dict[str, str], expect: int = 303) -> httpx.Response:
        response = await self.client.post(path, data=form)
        assert response.status_code == expect, response.text
        return response

    async def follow(self, response: httpx.Response) -> str:
        page = await self.client.get(response.headers["location"])
        assert page.status_code == 200, page.text
        return page.text

    async def webhooks(self) -> list[str]:
        await self.engine.webhooks.drain()
        return [body["type"] for body in self.receiver.bodies()]

    def snapshot(self) -> tuple[str, int]:
        return self.engine.state.to_json(), len(self.engine.webhooks.log())

    async def contact(self, email: str = "grace@example.com") -> str:
        """Grace Hopper, added through the form (once)."""
        known = [c["id"] for c in self.engine.state.contacts.values() if c["email"] == email]
        if known:
            return known[0]
        await self.post(f"{HOME}/contacts/new", {"firstName": "Grace", "lastName": "Hopper", "email": email})
        return next(c["id"] for c in self.engine.state.contacts.values() if c["email"] == email)


@pytest.fixture
async def pages(receiver: Receiver) -> AsyncIterator[Pages]:
    app = create_app(make_config(webhook_url=receiver.url))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as client,
    ):
        yield Pages(client, app.state.sandbox, receiver)


def flash(page: str) -> str:
    match = re.search(r'class="flash" role="status">([^<]*)<', page)
    assert match, "the page says nothing about what happened"
    return html.unescape(match.group(1))


def problems(page: str) -> list[str]:
    """The messages in the page's "There is a problem" box."""
    box = page.split('id="problems-title"')[1].split("</ul>")[0]
    return [html.unescape(m) for m in re.findall(r"<li>(?:<a href=\"#[^\"]*\">)?([^<]+)", box)]


# -- home ----------------------------------------------------------------------------------------------
async def test_home_lists_the_locations_and_each_location_page_its_contacts_invoices_and_payments(
    pages: Pages,
) -> None:
    home = await pages.client.get("/")
    assert home.status_code == 200
    assert f'href="/locations/{LOCATION}"' in home.text and f'href="/locations/{OTHER_LOCATION}"' in home.text
    page = (await pages.client.get(HOME)).text
    for heading in ("Contacts", "Invoices", "Payments", "Subscriptions"):
        assert f">{heading}</h2>" in page
    assert "No contacts yet" in page and "No payments yet" in page


async def test_a_single_location_sandbox_opens_on_that_location(receiver: Receiver) -> None:
    config = make_config(webhook_url=receiver.url)
    config.locations = config.locations[:1]
    app = create_app(config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://crm.test") as client:
        response = await client.get("/")
    assert response.status_code == 303 and response.headers["location"] == HOME


async def test_an_unknown_location_or_invoice_is_a_404_page(pages: Pages) -> None:
    for path in ("/locations/nowhere", f"{HOME}/invoices/0000", f"/locations/{OTHER_LOCATION}/payments/x/refund"):
        response = await pages.client.get(path)
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("text/html") and "<h1>Not found</h1>" in response.text


# -- contacts ------------------------------------------------------------------------------------------
async def test_adding_a_contact_sends_contact_create_and_lists_it(pages: Pages) -> None:
    response = await pages.post(
        f"{HOME}/contacts/new", {"firstName": "Grace", "lastName": "Hopper", "email": "grace@example.com"}
    )
    page = await pages.follow(response)
    assert flash(page) == "Contact Grace Hopper <grace@example.com> added."
    assert '<td data-label="E-mail">grace@example.com</td>' in page
    assert await pages.webhooks() == ["ContactCreate"]
    assert pages.receiver.bodies()[0]["email"] == "grace@example.com"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"email": "not-an-address"}, "Enter an e-mail address like name@example.com."),
        ({}, "Enter a name or an e-mail address."),
        ({"firstName": "x" * 201}, "The first name must be at most 200 characters."),
    ],
)
async def test_a_bad_contact_form_says_what_to_fix_and_writes_nothing(
    pages: Pages, form: dict[str, str], message: str
) -> None:
    before = pages.snapshot()
    response = await pages.post(f"{HOME}/contacts/new", form, expect=422)
    assert message in problems(response.text)
    assert 'aria-invalid="true"' in response.text
    assert pages.snapshot() == before


async def test_a_second_contact_with_the_same_email_is_refused(pages: Pages) -> None:
    await pages.contact()
    before = pages.snapshot()
    response = await pages.post(f"{HOME}/contacts/new", {"email": "GRACE@example.com"}, expect=422)
    assert problems(response.text) == ["A contact with this e-mail address already exists."]
    assert pages.snapshot() == before


# -- payments ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "source", "label"),
    [
        ("order_form", ("funnel", "one_step_order_form"), "order form"),
        ("order_form_two_step", ("funnel", "two_step_order_form"), "order form, two steps"),
        ("upsell", ("funnel", "upsell"), "order form upsell"),
        ("subscription", ("funnel", "one_step_order_form"), "subscription: first charge"),
        ("membership", ("membership", None), "membership checkout"),
        ("calendar_meeting", ("calendar", "meeting"), "calendar booking: meeting"),
        ("calendar_service", ("calendar", "service"), "calendar booking: service"),
        ("payment_link", ("payment_link", None), "payment link"),
    ],
)
async def test_each_kind_of_payment_makes_its_order_transaction_and_order_webhooks(
    pages: Pages, kind: str, source: tuple[str, str | None], label: str
) -> None:
    contact_id = await pages.contact()
    response = await pages.post(f"{HOME}/payments/new", {"contactId": contact_id, "kind": kind, **LINE})
    page = await pages.follow(response)
    assert flash(page) == f"Payment of $132.00 taken from Grace Hopper ({label})."
    (txn,) = pages.engine.state.transactions.values()
    assert (txn["entitySource"]["type"], txn["entitySource"].get("subType")) == source
    assert txn["amount"] == 132 and txn["contactEmail"] == "grace@example.com" and txn["status"] == "succeeded"
    assert (txn.get("meta") or {}).get("billingReason") == ("subscription_create" if kind == "subscription" else None)
    assert len(pages.engine.state.subscriptions) == (1 if kind == "subscription" else 0)
    assert await pages.webhooks() == ["ContactCreate", "OrderCreate", "OrderStatusUpdate"]
    assert f'id="payment-{txn["_id"]}"' in page


async def test_a_payment_of_two_lines_charges_their_sum(pages: Pages) -> None:
    contact_id = await pages.contact()
    two = {**LINE, "line1_name": "Workbook", "line1_qty": "2", "line1_price": "9.50"}
    await pages.post(f"{HOME}/payments/new", {"contactId": contact_id, "kind": "order_form", **two})
    (txn,) = pages.engine.state.transactions.values()
    assert txn["amount"] == 151


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contactId": "nobody"}, "Choose a customer."),
        ({"kind": "barter"}, "Choose how the customer pays."),
        ({"line0_price": "12,3.456"}, "The unit price on line 1 must be an amount like 120 or 99.50."),
        ({"line0_price": "-5"}, "The unit price on line 1 must be an amount like 120 or 99.50."),
        ({"line0_qty": "0"}, "The quantity on line 1 must be a number from 0.01 to 9999."),
        ({"line0_tax": "150"}, "The tax rate on line 1 must be a number from 0 to 100."),
        ({"line0_name": ""}, "Enter what line 1 is for."),
        (
            {"line0_name": "", "line0_price": "", "line0_tax": ""},
            "Add at least one line: what it is for and its unit price.",
        ),
    ],
)
async def test_a_bad_payment_form_says_what_to_fix_and_takes_nothing(
    pages: Pages, change: dict[str, str], message: str
) -> None:
    contact_id = await pages.contact()
    before = pages.snapshot()
    form = {"contactId": contact_id, "kind": "order_form", **LINE, **change}
    response = await pages.post(f"{HOME}/payments/new", form, expect=422)
    assert message in problems(response.text)
    assert pages.snapshot() == before


async def test_a_contact_of_another_location_cannot_pay_here(pages: Pages) -> None:
    await pages.post(f"/locations/{OTHER_LOCATION}/contacts/new", {"email": "elsewhere@example.com"})
    other = next(iter(pages.engine.state.contacts))
    before = pages.snapshot()
    response = await pages.post(f"{HOME}/payments/new", {"contactId": other, "kind": "order_form", **LINE}, expect=422)
    assert problems(response.text) == ["Choose a customer."]
    assert pages.snapshot() == before


async def test_a_subscription_renewal_charges_again_without_a_webhook(pages: Pages) -> None:
    contact_id = await pages.contact()
    await pages.post(f"{HOME}/payments/new", {"contactId": contact_id, "kind": "subscription", **LINE})
    (sub,) = pages.engine.state.subscriptions.values()
    assert "Charge a renewal" in (await pages.client.get(HOME)).text
    page = await pages.follow(await pages.post(f"{HOME}/subscriptions/{sub['_id']}/renew", {}))
    assert flash(page) == "Renewal of $132.00 charged to Grace Hopper."
    renewal = [t for t in pages.engine.state.transactions.values() if t["entityType"] == "subscription"]
    assert len(renewal) == 1 and renewal[0]["meta"]["billingReason"] == "subscription_cycle"
    assert sub["renewals"] == 1
    assert await pages.webhooks() == ["ContactCreate", "OrderCreate", "OrderStatusUpdate"]
    assert "Subscription renewal" in page


async def test_refunding_part_then_the_rest_of_a_payment(pages: Pages) -> None:
    contact_id = await pages.contact()
    await pages.post(f"{HOME}/payments/new", {"contactId": contact_id, "kind": "order_form", **LINE})
    (txn,) = pages.engine.state.transactions.values()
    refund = f"{HOME}/payments/{txn['_id']}/refund"
    form = (await pages.client.get(refund)).text
    assert 'value="132"' in form  # the whole amount is offered
    page = await pages.follow(await pages.post(refund, {"amount": "32"}))
    assert flash(page) == "Refunded to Grace Hopper: $32.00 of $132.00 in all."
    assert txn["status"] == "partially_refunded" and txn["amountRefunded"] == 32

    before = pages.snapshot()
    response = await pages.post(refund, {"amount": "100.01"}, expect=422)
    assert problems(response.text) == ["Refund more than 0 and at most $100.00."]
    assert pages.snapshot() == before

    await pages.post(refund, {"amount": "100"})
    assert txn["status"] == "refunded"
    assert pages.engine.state.orders[txn["entityId"]]["paymentStatus"] == "refunded"
    assert "fully refunded" in (await pages.client.get(refund)).text


# -- invoices ------------------------------------------------------------------------------------------
async def _invoice(pages: Pages, action: str, **extra: str) -> tuple[str, str]:
    contact_id = await pages.contact()
    form = {"contactId": contact_id, "name": "March coaching", **LINE, "action": action, **extra}
    response = await pages.post(f"{HOME}/invoices/new", form)
    page = await pages.follow(response)
    return response.headers["location"].split("?")[0], page


async def test_an_invoice_from_draft_to_sent_edited_partly_paid_and_paid(pages: Pages) -> None:
    url, page = await _invoice(pages, "draft", dueDate="2026-12-31")
    assert flash(page) == "Invoice 1001 saved as a draft."
    (invoice,) = pages.engine.state.invoices.values()
    assert invoice["status"] == "draft" and invoice["dueDate"] == "2026-12-31"

    page = await pages.follow(await pages.post(f"{url}/send", {}))
    assert flash(page) == "Invoice 1001 sent to grace@example.com."
    assert invoice["status"] == "sent"

    edit = {"name": "March coaching", **LINE, "line0_qty": "2", "discount_type": "fixed", "discount_value": "40"}
    page = await pages.follow(await pages.post(f"{url}/edit", edit))
    assert flash(page) == "Invoice 1001 saved."
    assert "$220.00" in page  # (2 × 120 − 40) + 10 % tax

    page = await pages.follow(await pages.post(f"{url}/pay", {"amount": "100", "mode": "cash"}))
    assert flash(page) == "Payment of $100.00 recorded from Grace Hopper."
    assert invoice["status"] == "partially_paid"
    page = await pages.follow(await pages.post(f"{url}/pay", {"amount": "120", "mode": "bank_transfer"}))
    assert invoice["status"] == "paid"
    assert "Record a payment" not in page and "Void invoice" not in page

    assert await pages.webhooks() == [
        "ContactCreate", "InvoiceCreate", "InvoiceSent", "InvoiceUpdate", "InvoicePartiallyPaid", "InvoicePaid",
    ]  # fmt: skip
    home = (await pages.client.get(HOME)).text
    assert "Invoice 1001 payment (bank transfer)" in home and "Invoice 1001 payment (cash)" in home


async def test_create_and_send_sends_both_webhooks(pages: Pages) -> None:
    _, page = await _invoice(pages, "send")
    assert flash(page) == "Invoice 1001 sent to grace@example.com."
    assert await pages.webhooks() == ["ContactCreate", "InvoiceCreate", "InvoiceSent"]


async def test_voiding_an_unpaid_invoice(pages: Pages) -> None:
    url, _ = await _invoice(pages, "send")
    page = await pages.follow(await pages.post(f"{url}/void", {}))
    assert flash(page) == "Invoice 1001 voided."
    assert "Send invoice" not in page and "Void invoice" not in page
    assert (await pages.webhooks())[-1] == "InvoiceVoid"


async def test_a_refused_invoice_action_is_a_409_page_that_changes_nothing(pages: Pages) -> None:
    url, _ = await _invoice(pages, "send")
    await pages.post(f"{url}/pay", {"amount": "10", "mode": "card"})
    before = pages.snapshot()
    response = await pages.post(f"{url}/void", {}, expect=409)
    assert problems(response.text) == ["An invoice with recorded payments cannot be voided."]
    assert pages.snapshot() == before


@pytest.mark.parametrize(
    ("path", "form", "message"),
    [
        ("pay", {"amount": "132.01", "mode": "card"}, "Enter more than 0 and at most the amount due, $132.00."),
        ("pay", {"amount": "0", "mode": "card"}, "Enter more than 0 and at most the amount due, $132.00."),
        ("pay", {"amount": "10", "mode": "goats"}, "Choose how it was paid."),
        ("edit", {"name": "", **LINE}, "Enter the invoice's name."),
        ("edit", {"name": "X", **LINE, "dueDate": "31/12/2026"}, "The due date must be a date like 2026-12-31."),
        ("edit", {"name": "X", **LINE, "discount_type": "percentage", "discount_value": "101"},
         "The discount must be a number from 0 to 100."),
    ],
)  # fmt: skip
async def test_a_bad_invoice_form_says_what_to_fix_and_writes_nothing(
    pages: Pages, path: str, form: dict[str, str], message: str
) -> None:
    url, _ = await _invoice(pages, "send")
    before = pages.snapshot()
    response = await pages.post(f"{url}/{path}", form, expect=422)
    assert message in problems(response.text)
    assert pages.snapshot() == before


async def test_a_bad_new_invoice_takes_no_invoice_number(pages: Pages) -> None:
    contact_id = await pages.contact()
    before = pages.snapshot()
    form = {"contactId": contact_id, **LINE, "line0_price": "lots", "action": "send"}
    response = await pages.post(f"{HOME}/invoices/new", form, expect=422)
    assert 'value="lots"' in response.text  # what the user typed is kept
    assert pages.snapshot() == before
    _, page = await _invoice(pages, "draft")
    assert flash(page) == "Invoice 1001 saved as a draft."


# -- reset ---------------------------------------------------------------------------------------------
async def test_reset_asks_first_then_empties_the_sandbox_but_keeps_the_locations_and_their_tokens(
    pages: Pages,
) -> None:
    contact_id = await pages.contact()
    await pages.post(f"{HOME}/payments/new", {"contactId": contact_id, "kind": "order_form", **LINE})
    confirm = await pages.client.get("/reset")
    assert confirm.status_code == 200 and "Reset the sandbox</button>" in confirm.text
    assert pages.engine.state.transactions  # asking changes nothing

    page = await pages.follow(await pages.post("/reset", {}))
    assert flash(page) == "The sandbox was reset: it holds no contacts, invoices or payments now."
    state = pages.engine.state
    assert not state.contacts and not state.transactions and not state.orders
    assert set(state.locations) == {LOCATION, OTHER_LOCATION}
    assert state.pit_tokens  # the configured tokens still work
    api = await pages.client.get(
        f"/contacts/{contact_id}", headers={"Authorization": "Bearer pit-test-token-1", "Version": "2021-07-28"}
    )
    assert api.status_code == 404


async def test_the_control_api_resets_too(pages: Pages) -> None:
    await pages.contact()
    response = await pages.client.post("/_control/reset")
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    assert body == {"reset": True, "locations": [LOCATION, OTHER_LOCATION]}
    assert not pages.engine.state.contacts


async def test_the_oauth_chooser_is_a_page_like_the_others_with_a_button_per_location(pages: Pages) -> None:
    query = {"response_type": "code", "client_id": "client-1", "redirect_uri": "http://app.test/callback"}
    page = await pages.client.get("/oauth/chooselocation", params={**query, "state": '"><script>x</script>'})
    assert page.status_code == 200 and "<h1>Choose a sub-account</h1>" in page.text
    assert 'name="viewport"' in page.text and "<strong>client-1</strong>" in page.text
    assert page.text.count('name="location_id"') == 2 and "<script>x</script>" not in page.text
