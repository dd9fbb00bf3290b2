"""Activity in business words: each event said from its model, what it became at the vendor with a link,
filters by state, kind and customer, routine checks folded away, and one object's timeline."""

from __future__ import annotations

from decimal import Decimal

import msgspec
from ledgerbridge import Money, Refund
from ledgerbridge.testing.harness import settle

from tests.core.plugins import make_payment
from tests.ui.conftest import Browser, UiServer

ACTIVITY = "/accounts/acme/activity"


async def publish(ui_server: UiServer, payment_id: str, *, amount: str = "198.50", email: str = "ada@example.com",
                  version: str = "1", refunded: str | None = None) -> None:  # fmt: skip
    ctx = await ui_server.runtime.plugin_context("producer").account("acme")
    assert ctx is not None
    payment = make_payment(payment_id, amount, email)
    if refunded is not None:
        refund = Refund(refund_id=f"{payment_id}-r", amount=Money(amount=Decimal(refunded), currency="USD"),
                        refunded_at=payment.paid_at)  # fmt: skip
        payment = msgspec.structs.replace(payment, refunds=(refund,))
    await ctx.publish(payment, external_id=f"evt-{payment_id}-{version}")


async def activity_after_one_booked_payment(signed_in: Browser, ui_server: UiServer) -> str:
    ui_server.books.reject_payments = False
    await publish(ui_server, "p-1")
    assert await settle(ui_server.runtime, "acme") == {"done": 1}
    return (await signed_in.get(ACTIVITY)).text


async def test_a_payment_reads_as_money_payer_and_kind_with_a_link_to_the_receipt(
    signed_in: Browser, ui_server: UiServer
) -> None:
    page = await activity_after_one_booked_payment(signed_in, ui_server)
    assert '<span class="headline">Payment $198.50</span> · Ada Lovelace · order form' in page
    assert '→ <a href="https://books.example/receipts/R-p-1">Demo Books receipt R-p-1</a>' in page
    assert "payment:p-1" not in page.split('<section aria-labelledby="log-title">')[0].replace(
        "object=payment%3Ap-1", ""
    )
    assert "just now" in page


async def test_a_done_delivery_shows_no_empty_details_or_action_cells_on_a_phone(
    signed_in: Browser, ui_server: UiServer
) -> None:
    page = await activity_after_one_booked_payment(signed_in, ui_server)
    assert '<td data-label="Details" class="empty">' in page and '<td data-label="Action" class="empty">' in page
    css = (await signed_in.get("/static/ui.css")).text
    assert ".deliveries td.empty { display: none; }" in css.split("@media (max-width: 40rem)")[1]


async def test_filters_by_kind_and_customer_keep_only_what_matches(signed_in: Browser, ui_server: UiServer) -> None:
    ui_server.books.reject_payments = False
    await publish(ui_server, "p-1")
    await publish(ui_server, "p-2", amount="5.00")
    await settle(ui_server.runtime, "acme")
    everything = (await signed_in.get(ACTIVITY)).text
    assert 'id="delivery-1"' in everything and 'id="delivery-2"' in everything
    by_name = (await signed_in.get(ACTIVITY + "?customer=lovelace&kind=payment")).text
    assert 'id="delivery-1"' in by_name and 'id="delivery-2"' in by_name
    nobody = (await signed_in.get(ACTIVITY + "?customer=Grace")).text
    assert 'id="delivery-1"' not in nobody and "No deliveries match these filters yet." in nobody
    invoices = (await signed_in.get(ACTIVITY + "?kind=invoice_change")).text
    assert 'id="delivery-1"' not in invoices
    assert '<option value="invoice_change" selected>Invoices</option>' in invoices


async def test_an_unknown_kind_is_a_clear_400(signed_in: Browser) -> None:
    response = await signed_in.get(ACTIVITY + "?kind=bogus")
    assert response.status_code == 400
    assert "kind must be one of payment, invoice_change" in response.text


async def test_routine_checks_are_folded_away_until_asked_for(signed_in: Browser, ui_server: UiServer) -> None:
    ctx = await ui_server.runtime.plugin_context("books").account("acme")
    assert ctx is not None
    await ctx.notify("order_status", {"status": "pending"}, external_id="n-1", object_key="order:o-1")
    await settle(ui_server.runtime, "acme")
    deliveries = await ui_server.runtime.store.list_deliveries("acme")
    assert [d.event_type for d in deliveries] == ["notification"]
    folded = (await signed_in.get(ACTIVITY)).text
    assert f'id="delivery-{deliveries[0].id}"' not in folded
    assert "1 routine check(s) of vendor notifications are folded away." in folded
    assert "is pending, not paid" not in folded  # nor its line in the log
    assert 'Skipped <span class="count">0</span>' in folded and "Send all skipped now" not in folded
    shown = (await signed_in.get(ACTIVITY + "?routine=1")).text
    assert f'id="delivery-{deliveries[0].id}"' in shown and "Routine check: order status" in shown
    assert "order:o-1 is pending, not paid" in shown
    card = (await signed_in.get("/accounts/acme/settings/integrations")).text
    assert 'books&amp;state=skipped">0 skipped</a>' in card  # not news on the card either


async def test_an_objects_timeline_lists_each_step_oldest_first(signed_in: Browser, ui_server: UiServer) -> None:
    ui_server.books.reject_payments = False
    await publish(ui_server, "p-1")
    await settle(ui_server.runtime, "acme")
    await publish(ui_server, "p-1", version="2", refunded="20.00")
    await settle(ui_server.runtime, "acme")
    page = (await signed_in.get(ACTIVITY)).text
    assert "/accounts/acme/activity/object?object=payment%3Ap-1" in page
    timeline = await signed_in.get(ACTIVITY + "/object?object=payment%3Ap-1")
    assert timeline.status_code == 200
    text = timeline.text
    assert "<h1>Payment $198.50 from Ada Lovelace</h1>" in text
    first, second = text.index("paid $198.50</span>"), text.index("paid $198.50, $20.00 refunded")
    assert first < second
    assert text.count('<a href="https://books.example/receipts/R-p-1">') == 2


async def test_a_timeline_of_nothing_is_a_404_page(signed_in: Browser) -> None:
    response = await signed_in.get(ACTIVITY + "/object?object=invoice%3Anope")
    assert response.status_code == 404
    assert "nothing has happened to &#39;invoice:nope&#39; in this account" in response.text
    assert (await signed_in.get(ACTIVITY + "/object")).status_code == 400
