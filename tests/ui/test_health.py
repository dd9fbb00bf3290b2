"""Card health and account health: counts that link into Activity, the last successful sync as a relative
time, and "needs attention" with the fix as a button that works."""

from __future__ import annotations

from ledgerbridge.testing.harness import settle

from tests.ui.conftest import Browser, UiServer

INTEGRATIONS = "/accounts/acme/settings/integrations"


async def test_a_failed_delivery_puts_the_card_in_need_of_attention_with_retry_as_the_fix(
    signed_in: Browser, ui_server: UiServer
) -> None:
    await ui_server.pay("acme", "p-1")
    assert await settle(ui_server.runtime, "acme") == {"dead": 1}
    card = (await signed_in.get(INTEGRATIONS)).text
    assert '<span class="health-state">Needs attention</span>' in card
    assert "Last sync <time>never</time>" in card
    assert '<a href="/accounts/acme/activity?plugin=books&amp;state=dead">1 failed</a>' in card
    assert "1 delivery failed and waits for you." in card
    assert 'action="/accounts/acme/plugins/books/retry-failed"' in card and ">Retry 1</button>" in card
    failed_only = (await signed_in.get("/accounts/acme/activity?plugin=books&state=dead")).text
    assert 'id="delivery-1"' in failed_only
    accounts = (await signed_in.get("/")).text
    acme = accounts.split('id="account-acme"')[1].split("</li>")[0]
    globex = accounts.split('id="account-globex"')[1].split("</li>")[0]
    assert "Needs attention: 1 delivery failed" in acme and "All good" in globex

    ui_server.books.reject_payments = False
    answer = await signed_in.post("/accounts/acme/plugins/books/retry-failed", {})
    assert answer.status_code == 303 and answer.headers["location"] == INTEGRATIONS + "#plugin-books"
    assert await settle(ui_server.runtime, "acme") == {"done": 1}
    healed = (await signed_in.get(INTEGRATIONS)).text
    assert "1 failed delivery of books queued to be tried again." in healed
    assert '<span class="health-state">Healthy</span>' in healed and ">just now</time>" in healed
    assert ">0 failed</a>" in healed and "Retry 1" not in healed
    assert "All good · last sync" in (await signed_in.get("/")).text


async def test_retry_failed_with_nothing_failed_queues_nothing(signed_in: Browser, ui_server: UiServer) -> None:
    await signed_in.get(INTEGRATIONS)
    answer = await signed_in.post("/accounts/acme/plugins/books/retry-failed", {})
    assert answer.status_code == 303
    assert "0 failed deliveries of books queued" in (await signed_in.get(INTEGRATIONS)).text
    missing = await signed_in.post("/accounts/acme/plugins/nope/retry-failed", {})
    assert missing.status_code == 404


async def test_a_cards_moments_are_said_as_relative_times(signed_in: Browser) -> None:
    card = (await signed_in.get(INTEGRATIONS)).text
    assert "<dt>Connected since</dt><dd><time datetime=" in card and ">2 min ago</time></dd>" in card
    assert "two minutes before" not in card  # the text is for the admin API and the CLI
