"""The built-in plugins' card actions, submitted as a signed-in browser would: the CRM Connect token form
connects and returns to the integrations page; a plugin's POST without the session's CSRF token is refused."""

from __future__ import annotations

from tests.ui.conftest import Browser
from tests.ui.test_journey import Product, product  # noqa: F401  (the fixture: both plugins and sandboxes)


async def test_crm_connect_with_a_token_through_its_form(product: Product) -> None:  # noqa: F811
    await product.runtime.create_account("acme", "Acme")
    browser = Browser(product.url)
    async with browser.client:
        await browser.sign_in()
        page = await browser.get("/plugins/crmconnect/accounts/acme/connect")
        assert page.status_code == 200 and 'name="token"' in page.text
        refused = await browser.post(
            "/plugins/crmconnect/accounts/acme/connect", {"location_id": "loc-x", "token": "t"}, csrf=False
        )
        assert refused.status_code == 403
        assert "CRM Connect" not in str(await product.runtime.store.list_activity("acme"))

        done = await browser.post(
            "/plugins/crmconnect/accounts/acme/connect",
            {"location_id": "lbSandboxLocation001", "token": "ledgerbridge-sandbox-pit"},
        )
        assert done.status_code == 303
        assert done.headers["location"].endswith("/accounts/acme/settings/integrations")
        state = await product.runtime.store.get_plugin_state("acme", "crmconnect")
        assert state.external_id == "lbSandboxLocation001"

        without = await browser.post("/plugins/quickbooks/disconnect?account=acme", {"confirm": "yes"}, csrf=False)
        assert without.status_code == 403
        signed_out = Browser(product.url)
        async with signed_out.client:
            anonymous = await signed_out.client.post("/plugins/crmconnect/accounts/acme/disconnect", data={})
            assert anonymous.status_code == 401


async def test_disconnect_asks_first_then_disconnects(product: Product) -> None:  # noqa: F811
    await product.runtime.create_account("acme", "Acme")
    browser = Browser(product.url)
    async with browser.client:
        await browser.sign_in()
        await browser.get("/plugins/crmconnect/accounts/acme/connect")
        await browser.post(
            "/plugins/crmconnect/accounts/acme/connect",
            {"location_id": "lbSandboxLocation001", "token": "ledgerbridge-sandbox-pit"},
        )
        card = (await browser.get("/accounts/acme/settings/integrations")).text
        ask = "/accounts/acme/plugins/crmconnect/confirm?action=Disconnect"
        assert f'href="{ask}">Disconnect</a>' in card
        question = await browser.get(ask)
        assert question.status_code == 200
        assert "<h1>Disconnect CRM Connect? Payments and invoices stop arriving until you connect again.</h1>" in (
            question.text
        )
        assert 'action="' + product.url + '/plugins/crmconnect/accounts/acme/disconnect"' in question.text
        assert (await browser.get("/accounts/acme/plugins/crmconnect/confirm?action=Explode")).status_code == 404
        done = await browser.post("/plugins/crmconnect/accounts/acme/disconnect", {"account": "acme"})
        assert done.status_code in (200, 303)
        assert "CRM Connect disconnected" in [e.message for e in await product.runtime.store.list_activity("acme")]
