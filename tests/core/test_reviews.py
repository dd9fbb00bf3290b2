"""Review requests, owned by the core: once per contact, ever, claimed before any look-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ledgerbridge import AccountContext, Contact, DeliveryContext, FirstInvoicePaid, InvoicePaid, Money, hookimpl
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing.harness import settle
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

from tests.core.plugins import Producer


class Books:
    """The account's books: knows each customer's first invoice; counts how often it was asked."""

    role = "accounting"

    def __init__(self, first: dict[str, str]) -> None:
        self.first = first
        self.asked = 0
        self.slow = asyncio.Event()
        self.slow.set()

    @hookimpl
    async def is_first_invoice(self, ctx: AccountContext, customer_id: str, invoice_id: str) -> bool:
        self.asked += 1
        await self.slow.wait()
        return self.first.get(customer_id) == invoice_id


class Crm:
    role = "crm"

    def __init__(self, link: str | None = "https://crm.example/review") -> None:
        self.link = link
        self.sent: list[FirstInvoicePaid] = []

    @hookimpl
    async def on_first_invoice_paid(self, ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
        self.sent.append(event)

    @hookimpl
    def default_review_link(self, ctx: AccountContext) -> str | None:
        return self.link


def paid(invoice_id: str, customer_id: str = "c-1", email: str = "ada@example.com") -> InvoicePaid:
    return InvoicePaid(
        contact=Contact(name="Ada Lovelace", email=email, given_name="Ada"),
        customer_id=customer_id,
        invoice_id=invoice_id,
        invoice_number=f"N-{invoice_id}",
        total=Money(amount=Decimal("100"), currency="USD"),
        paid_at=datetime.now(UTC),
    )


async def setup(make_runtime, books: Books, crm: Crm, *, enabled: bool = True) -> Runtime:
    runtime: Runtime = await make_runtime({"producer": Producer(), "books": books, "crm": crm})
    await runtime.create_account("acme", "Acme")
    account = await runtime.store.get_account("acme")
    assert account is not None
    if enabled:
        await operations.update_settings(runtime, account, "reviews", {"enabled": True})
    return runtime


async def publish(runtime: Runtime, fact: InvoicePaid) -> None:
    ctx = await runtime.plugin_context("producer").account("acme")
    assert ctx is not None
    await ctx.publish(fact, external_id=f"invoice-paid:{fact.invoice_id}")


async def test_a_first_invoice_paid_asks_the_crm_once_with_the_message_and_link(make_runtime) -> None:
    books, crm = Books({"c-1": "inv-1"}), Crm()
    runtime = await setup(make_runtime, books, crm)
    await publish(runtime, paid("inv-1"))
    await publish(runtime, paid("inv-1"))  # the same fact again: stored once
    await settle(runtime, "acme")
    [event] = crm.sent
    assert event.request is not None and event.request.link == "https://crm.example/review"
    assert event.request.message.startswith("Thank you for your business, Ada!")
    assert event.request.channel == "email" and event.request.subject == "How did we do?"


async def test_facts_about_one_customer_arriving_together_look_up_once_and_ask_once(make_runtime) -> None:
    # the same customer under another id (a second customer record with the same e-mail), each record's first
    # invoice paid at the same time: whichever fact claims the contact first checks; the other waits, then skips
    books, crm = Books({"c-1": "inv-1", "c-1-dup": "inv-9"}), Crm()
    runtime = await setup(make_runtime, books, crm)
    books.slow.clear()
    await publish(runtime, paid("inv-1"))
    await publish(runtime, paid("inv-9", customer_id="c-1-dup"))
    await asyncio.sleep(0.3)
    books.slow.set()
    await settle(runtime, "acme")
    assert books.asked == 1 and len(crm.sent) == 1
    assert crm.sent[0].invoice_id in {"inv-1", "inv-9"}


async def test_the_first_invoice_paid_while_a_later_one_is_being_checked_still_asks(make_runtime) -> None:
    books, crm = Books({"c-1": "inv-1"}), Crm()
    runtime = await setup(make_runtime, books, crm)
    books.slow.clear()
    await publish(runtime, paid("inv-2", customer_id="c-1-dup"))  # not the first: holds the claim a while
    await asyncio.sleep(0.2)
    await publish(runtime, paid("inv-1"))  # the first: must wait for the claim, not give up
    await asyncio.sleep(0.2)
    books.slow.set()
    await settle(runtime, "acme", timeout=15)
    assert [e.invoice_id for e in crm.sent] == ["inv-1"]


async def test_a_second_invoice_paid_first_asks_nothing_until_the_first_is_paid(make_runtime) -> None:
    books, crm = Books({"c-1": "inv-1"}), Crm()
    runtime = await setup(make_runtime, books, crm)
    await publish(runtime, paid("inv-2"))
    await settle(runtime, "acme")
    assert crm.sent == []
    await publish(runtime, paid("inv-1"))
    await settle(runtime, "acme")
    assert [e.invoice_id for e in crm.sent] == ["inv-1"]
    await publish(runtime, paid("inv-3"))
    await settle(runtime, "acme")
    assert len(crm.sent) == 1


async def test_a_first_invoice_paid_while_switched_off_never_asks_later(make_runtime) -> None:
    books, crm = Books({"c-1": "inv-1"}), Crm()
    runtime = await setup(make_runtime, books, crm, enabled=False)
    await publish(runtime, paid("inv-1"))
    await settle(runtime, "acme")
    account = await runtime.store.get_account("acme")
    assert account is not None
    await operations.update_settings(runtime, account, "reviews", {"enabled": True})
    await publish(runtime, paid("inv-2"))
    await settle(runtime, "acme")
    assert crm.sent == []
    [skip, *_] = [d for d in await runtime.store.list_deliveries("acme", "skipped") if d.plugin == "reviews"]
    assert skip.last_error is not None


async def test_the_switch_cannot_go_on_without_a_review_link(make_runtime) -> None:
    runtime = await setup(make_runtime, Books({}), Crm(link=None), enabled=False)
    account = await runtime.store.get_account("acme")
    assert account is not None
    with pytest.raises(ApiError, match="set the review link"):
        await operations.update_settings(runtime, account, "reviews", {"enabled": True})
    assert (await runtime.store.get_plugin_state("acme", "reviews")).settings.get("enabled") is not True
    await operations.update_settings(runtime, account, "reviews", {"review_link": "https://g.page/r/acme"})
    settings = await operations.update_settings(runtime, account, "reviews", {"enabled": True})
    assert settings.enabled is True
