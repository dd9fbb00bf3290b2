"""Connection problems are pages in the UI's frame, in plain words, with "Try again" and "Back to
Integrations" — never a raw JSON body or an OAuth error code. API clients still get JSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.ui.conftest import Browser
from tests.ui.test_journey import Product, product, qb_sign_in  # noqa: F401 (the fixture)


@pytest.fixture
async def admin(product: Product) -> AsyncIterator[Browser]:  # noqa: F811
    browser = Browser(product.url)
    async with browser.client:
        await browser.sign_in()
        yield browser


async def test_an_expired_sign_in_is_a_page_with_a_way_back(admin: Browser, product: Product) -> None:  # noqa: F811
    response = await admin.get("/plugins/quickbooks/callback?state=used-already&code=c&realmId=1")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>This sign-in link has expired</h1>" in response.text
    assert "Start again with QB Connect" in response.text and "Back to Integrations" in response.text
    assert '{"error"' not in response.text
    async with httpx.AsyncClient(base_url=product.url) as api:
        answer = await api.get("/plugins/quickbooks/callback?state=used-already")
        assert answer.status_code == 400 and "10 minutes old" in answer.json()["error"]


async def test_a_company_already_used_by_another_account_is_refused_in_words(admin: Browser, product: Product) -> None:  # noqa: F811
    await product.runtime.create_account("acme", "Acme Ltd")
    await product.runtime.create_account("globex", "Globex")
    first = await qb_sign_in(admin, "acme")
    assert first.status_code == 303 and "connected=1" in first.headers["location"]
    realm = parse_qs(urlsplit(first.headers["location"]).query)["realm_id"][0]
    second = await qb_sign_in(admin, "globex", realm)
    assert second.status_code == 409
    assert "<h1>That company is connected to another account</h1>" in second.text
    assert "is already connected to the account “Acme Ltd”. A company serves one account" in second.text
    assert f'href="{product.url}/plugins/quickbooks/connect?account=globex">Try again</a>' in second.text
    assert "/accounts/globex/settings/integrations" in second.text
    assert (await product.runtime.store.get_plugin_state("globex", "quickbooks")).external_id is None


async def test_two_accounts_finishing_the_sign_in_to_one_company_together_get_one_connection_and_one_refusal(
    admin: Browser,
    product: Product,  # noqa: F811
) -> None:
    for account in ("acme", "globex", "initech"):
        await product.runtime.create_account(account, account.title())
    first = await qb_sign_in(admin, "acme")
    realm = parse_qs(urlsplit(first.headers["location"]).query)["realm_id"][0]
    await product.runtime.store.set_external_id("acme", "quickbooks", None)  # the company is free again

    async def signed_in_until_the_callback(account: str) -> str:
        start = await admin.client.get(f"/plugins/quickbooks/connect?account={account}")
        query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
        form = {name: query.get(name, "") for name in ("client_id", "redirect_uri", "state", "scope")}
        allowed = await admin.client.post(
            start.headers["location"].split("?")[0],
            data={**form, "email": "owner@example.com", "realm_id": realm, "company_name": "Acme", "action": "allow"},
        )
        return allowed.headers["location"]

    callbacks = [await signed_in_until_the_callback(account) for account in ("globex", "initech")]
    answers = await asyncio.gather(*(admin.client.get(url) for url in callbacks))
    assert sorted(answer.status_code for answer in answers) == [303, 409]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert "<h1>That company is connected to another account</h1>" in refused.text
    holders = [
        (await product.runtime.store.get_plugin_state(a, "quickbooks")).external_id for a in ("globex", "initech")
    ]
    assert sorted(holders, key=str) == sorted([realm, None], key=str)
    loser = "globex" if holders[1] == realm else "initech"
    assert await product.runtime.store.get_secret(loser, "quickbooks", "connection") is None


async def test_connecting_an_unknown_account_is_a_404_page(admin: Browser) -> None:
    response = await admin.get("/plugins/quickbooks/connect?account=nobody")
    assert response.status_code == 404
    assert "<h1>No such account</h1>" in response.text and "Back to Integrations" in response.text


async def test_a_used_crm_sign_in_is_a_page_for_a_browser_and_json_for_an_api_client(
    admin: Browser,
    product: Product,  # noqa: F811
) -> None:
    page = await admin.get("/plugins/crmconnect/oauth/callback?state=used-already&code=c")
    assert page.status_code == 400
    assert "<h1>The CRM sign-in could not be finished</h1>" in page.text and "Back to Integrations" in page.text
    async with httpx.AsyncClient(base_url=product.url) as api:
        answer = await api.get("/plugins/crmconnect/oauth/callback?state=used-already&code=c")
        assert answer.status_code == 400 and "state" in answer.json()["error"]["message"]
