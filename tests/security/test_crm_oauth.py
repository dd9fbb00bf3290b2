"""CRM Connect's OAuth callback: a location held by another account is a 409 that saves nothing; a bad code
is a 400 that says to start again."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path

import httpx
import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.sandbox import LocationSeed, OAuthAppSeed, SandboxConfig
from ledgerbridge_crmconnect.sandbox import create_app as create_crm_sandbox

from tests.security.conftest import ADMIN, Product, product_settings, real_plugins

CLIENT_ID, CLIENT_SECRET = "oauth-test-client", "oauth-test-secret"
SHARED_LOCATION = "sharedLocation000001"


@pytest.fixture
async def oauth_product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None) -> AsyncIterator[Product]:
    port, sandbox_port = free_port(), free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox = create_crm_sandbox(SandboxConfig(
        base_url=sandbox_url, locations=[LocationSeed(id=SHARED_LOCATION, name="Shared", token="shared-pit")],
        oauth_apps=[OAuthAppSeed(CLIENT_ID, CLIENT_SECRET, [f"http://127.0.0.1:{port}/plugins/crmconnect/oauth/callback"])],
    ))  # fmt: skip
    monkeypatch.setenv("LEDGERBRIDGE_CRM_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("LEDGERBRIDGE_CRM_CLIENT_SECRET", CLIENT_SECRET)
    settings = product_settings(tmp_path / "data", port)
    app = create_app(settings, runtime=Runtime(settings, real_plugins()))
    async with (
        running_server(sandbox, port=sandbox_port),
        running_server(app, port=port) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        for name in ("acme", "globex"):
            await http.post("/admin/api/accounts", json={"name": name.title()}, headers=ADMIN)
            await http.patch(f"/admin/api/accounts/{name}/plugins/crmconnect/settings", headers=ADMIN,
                             json={"api_base_url": sandbox_url, "sandbox": True})  # fmt: skip
        yield Product(url, app.state.runtime, app, settings.data_dir, http)


async def choose(product: Product, account: str) -> str:
    """Start OAuth as the admin and pick the shared location on the CRM's chooser: the callback URL."""
    start = await product.http.get(f"/plugins/crmconnect/accounts/{account}/oauth/start", headers=ADMIN)
    assert start.status_code == 302, start.text
    chooser = await product.http.get(start.headers["location"])
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', chooser.text))
    form = {unescape(k): unescape(v) for k, v in form.items()}
    chosen = await product.http.post(start.headers["location"].split("?")[0], data=form)
    assert chosen.status_code == 302, chosen.text
    return chosen.headers["location"]


def without_nonces(rows: list[str]) -> list[str]:
    return [row for row in rows if '"nonces"' not in row]


async def test_oauth_into_a_location_another_account_holds_is_a_409_that_saves_nothing(oauth_product: Product) -> None:
    first = await oauth_product.http.get(await choose(oauth_product, "acme"))
    assert first.status_code == 200, first.text
    assert first.json() == {"connected": True, "location_id": SHARED_LOCATION}

    callback = await choose(oauth_product, "globex")
    before = without_nonces(oauth_product.snapshot())
    second = await oauth_product.http.get(callback)
    assert second.status_code == 409
    assert "already connected to the account 'Acme'" in second.json()["error"]["message"]
    assert without_nonces(oauth_product.snapshot()) == before


async def test_a_bad_code_at_the_crm_callback_is_a_400_that_says_start_again(oauth_product: Product) -> None:
    callback = httpx.URL(await choose(oauth_product, "acme"))
    before = without_nonces(oauth_product.snapshot())
    response = await oauth_product.http.get(
        "/plugins/crmconnect/oauth/callback", params={"state": callback.params["state"], "code": "not-a-code"}
    )
    assert response.status_code == 400
    assert "start again" in response.json()["error"]["message"]
    assert without_nonces(oauth_product.snapshot()) == before
