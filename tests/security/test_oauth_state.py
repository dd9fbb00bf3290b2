"""OAuth state is single-use and bound to its plugin: shown to the wrong callback, it consumes nothing."""

from __future__ import annotations

import httpx

from tests.security.conftest import ADMIN, Product, SignedIn


async def test_a_quickbooks_state_shown_to_the_crm_callback_is_refused_and_still_works_at_quickbooks(
    product: Product, browser: SignedIn
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    start = await browser.client.get("/plugins/quickbooks/connect", params={"account": "acme"})
    state = httpx.URL(start.headers["location"]).params["state"]

    crm = await product.http.get("/plugins/crmconnect/oauth/callback", params={"state": state, "code": "x"})
    assert crm.status_code == 400
    assert "state" in crm.json()["error"]["message"]

    genuine = await product.http.get("/plugins/quickbooks/callback", params={"state": state, "error": "access_denied"})
    assert genuine.status_code == 303
    again = await product.http.get("/plugins/quickbooks/callback", params={"state": state, "error": "access_denied"})
    assert again.status_code == 400  # single use


async def test_a_bad_authorization_code_at_the_quickbooks_callback_is_a_400_that_says_start_again(
    product: Product, browser: SignedIn
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    start = await browser.client.get("/plugins/quickbooks/connect", params={"account": "acme"})
    state = httpx.URL(start.headers["location"]).params["state"]
    before = product.snapshot()
    response = await product.http.get(
        "/plugins/quickbooks/callback", params={"state": state, "code": "not-a-code", "realmId": "9130000000000001"}
    )
    assert response.status_code == 400
    assert "start again" in response.json()["error"]
    assert [line for line in product.snapshot() if "activity" not in line and "nonces" not in line] == [
        line for line in before if "activity" not in line and "nonces" not in line
    ]
