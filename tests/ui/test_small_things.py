"""Small things users notice: a double-clicked "Create account" makes one account and shows it; a form
posted after the session expired leads, once signed in again, back to the page the form was on."""

from __future__ import annotations

import asyncio

from tests.ui.conftest import TOKEN, Browser, UiServer


async def test_a_double_clicked_create_account_makes_one_and_shows_it(signed_in: Browser, ui_server: UiServer) -> None:
    first, second = await asyncio.gather(
        signed_in.post("/accounts", {"name": "Initech Corp", "id": ""}),
        signed_in.post("/accounts", {"name": "Initech Corp", "id": ""}),
    )
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"] == "/accounts/initech-corp/settings/integrations"
    assert [a.id for a in await ui_server.runtime.store.list_accounts()].count("initech-corp") == 1
    page = (await signed_in.get(first.headers["location"])).text
    assert "already exists" not in page


async def test_a_form_posted_after_the_session_ended_returns_to_its_page(ui_server: UiServer) -> None:
    browser = Browser(ui_server.url)
    async with browser.client:
        page = ui_server.url + "/accounts/acme/activity?state=dead"
        answer = await browser.client.post(
            "/accounts/acme/skipped/send", data={"csrf_token": "stale"}, headers={"referer": page}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin?next=%2Faccounts%2Facme%2Factivity%3Fstate%3Ddead"
        await browser.get(answer.headers["location"])
        signed = await browser.post("/signin", {"token": TOKEN, "next": "/accounts/acme/activity?state=dead"})
        assert signed.headers["location"] == "/accounts/acme/activity?state=dead"
    stranger = Browser(ui_server.url)
    async with stranger.client:
        foreign = await stranger.client.post(
            "/accounts/acme/skipped/send", data={}, headers={"referer": "https://evil.example/accounts/acme"}
        )
        assert foreign.headers["location"] == "/signin?next=%2F"
