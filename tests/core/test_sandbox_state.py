"""Both mounted sandboxes keep what they hold in the data dir across server restarts, and forget it only
when asked (`serve --reset-sandboxes`, the control API, the pages' reset buttons)."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import ledgerbridge_crmconnect.plugin as crmconnect_plugin
import ledgerbridge_quickbooks.plugin as quickbooks_plugin
import pytest
from ledgerbridge import sandboxes
from ledgerbridge.cli import build_parser
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.ui.sandboxes import sandbox_links
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.connection import SANDBOX_LOCATION_ID, SANDBOX_TOKEN

from tests.core.conftest import fast_settings

VENDOR_ENV = [
    *(f"LEDGERBRIDGE_QBO_{n}" for n in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL")),
    "LEDGERBRIDGE_CRM_CLIENT_ID",
    "LEDGERBRIDGE_CRM_CLIENT_SECRET",
    "LEDGERBRIDGE_CRM_SANDBOX",
]
CRM_API = {"Version": "2021-07-28"}
ITEMS = [{"name": "Coaching session", "qty": 1, "amount": 120}]


@asynccontextmanager
async def server(data_dir: Path, port: int) -> AsyncIterator[tuple[str, httpx.AsyncClient, dict[str, Any]]]:
    """The server with both built-in plugins and their sandboxes mounted, on a data dir; stopped at exit."""
    manager = PluginManager()
    manager.register(quickbooks_plugin.QuickBooksPlugin, "quickbooks")
    manager.register(crmconnect_plugin.CrmConnectPlugin, "crmconnect")
    manager.check_pending()
    settings = fast_settings(data_dir, port=port, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings, runtime=Runtime(settings, manager))
    engines = {name: route.app.state.sandbox for name, route in _mounts(app).items()}
    async with running_server(app, port=port) as url, httpx.AsyncClient(base_url=url, timeout=20) as http:
        yield url, http, engines


def _mounts(app: Any) -> dict[str, Any]:
    return {r.path.removeprefix("/sandbox/"): r for r in app.routes if getattr(r, "path", "").startswith("/sandbox/")}


@pytest.fixture(autouse=True)
def _sandbox_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)


async def _crm_oauth_tokens(http: httpx.AsyncClient) -> dict[str, Any]:
    """What a marketplace app gets: a code from the location chooser, exchanged for a token pair."""
    chooser = await http.post(
        "/sandbox/crmconnect/oauth/chooselocation",
        data={"client_id": "sandbox-client", "redirect_uri": "http://app.test/cb", "location_id": SANDBOX_LOCATION_ID},
    )
    assert chooser.status_code == 302, chooser.text
    code = httpx.URL(chooser.headers["location"]).params["code"]
    form = {"grant_type": "authorization_code", "code": code, "client_id": "sandbox-client"}
    tokens = await http.post("/sandbox/crmconnect/oauth/token", data={**form, "client_secret": "sandbox-secret"})
    assert tokens.status_code == 200, tokens.text
    body: dict[str, Any] = tokens.json()
    return body


async def test_a_restarted_server_finds_both_sandboxes_as_it_left_them(tmp_path: Path) -> None:
    port = free_port()
    crm, qbo = "/sandbox/crmconnect/_control", "/sandbox/quickbooks/_control"
    async with server(tmp_path, port) as (_, http, engines):
        contact = (await http.post(f"{crm}/contacts", json={"locationId": SANDBOX_LOCATION_ID, "firstName": "Ada",
                                                            "email": "ada@example.com"})).json()  # fmt: skip
        invoice = await http.post(f"{crm}/invoices", json={"contactId": contact["id"], "items": ITEMS, "send": True})
        paid = (await http.post(f"{crm}/payments/order-form", json={"contactId": contact["id"], "items": ITEMS})).json()
        crm_tokens = await _crm_oauth_tokens(http)
        keys = engines["crmconnect"].public_keys()

        (realm,) = engines["quickbooks"].companies
        qbo_tokens = (await http.post(f"{qbo}/tokens", json={"client_id": quickbooks_plugin.SANDBOX_CLIENT_ID,
                                                            "realmId": realm})).json()  # fmt: skip
        customer = (await http.post(f"{qbo}/companies/{realm}/customers", json={"DisplayName": "Ada"})).json()

    assert (tmp_path / "sandboxes" / "crmconnect" / "state.json").is_file()
    assert (tmp_path / "sandboxes" / "quickbooks" / "state.json").is_file()

    async with server(tmp_path, port) as (url, http, engines):
        app_urls = {name: f"{url}/sandbox/{name}" for name in engines}
        crm_state = engines["crmconnect"].state
        assert contact["id"] in crm_state.contacts
        assert (
            invoice.json()["_id"] in crm_state.invoices
            and crm_state.invoices[invoice.json()["_id"]]["status"] == "sent"
        )
        assert paid["transaction"]["_id"] in crm_state.transactions and paid["order"]["_id"] in crm_state.orders
        assert engines["crmconnect"].public_keys() == keys  # webhooks stay verifiable

        # the OAuth access token from before the restart still works, and so does its refresh token
        bearer = {"Authorization": f"Bearer {crm_tokens['access_token']}", **CRM_API}
        got = await http.get(f"/sandbox/crmconnect/contacts/{contact['id']}", headers=bearer)
        assert got.status_code == 200 and got.json()["contact"]["email"] == "ada@example.com"
        refreshed = await http.post("/sandbox/crmconnect/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": crm_tokens["refresh_token"],
            "client_id": "sandbox-client", "client_secret": "sandbox-secret"})  # fmt: skip
        assert refreshed.status_code == 200, refreshed.text
        pit = {"Authorization": f"Bearer {SANDBOX_TOKEN}", **CRM_API}
        assert (await http.get(f"/sandbox/crmconnect/contacts/{contact['id']}", headers=pit)).status_code == 200

        # QuickBooks: the same company, its customer, the app and a working access token
        assert list(engines["quickbooks"].companies) == [realm]
        assert quickbooks_plugin.SANDBOX_CLIENT_ID in engines["quickbooks"].apps
        qbo_bearer = {"Authorization": f"Bearer {qbo_tokens['access_token']}"}
        read = await http.get(f"/sandbox/quickbooks/v3/company/{realm}/customer/{customer['Customer']['Id']}",
                              headers=qbo_bearer)  # fmt: skip
        assert read.status_code == 200 and read.json()["Customer"]["DisplayName"] == "Ada"

        # the Sandbox-mode banner's links open both sandboxes' pages, the CRM's showing the kept data
        plugins = (quickbooks_plugin.QuickBooksPlugin, crmconnect_plugin.CrmConnectPlugin)
        specs = {spec.name: spec for plugin in plugins for spec in plugin.register_sandboxes()}
        links = {link.name: link.url for link in sandbox_links(app_urls, specs)}
        assert links["crmconnect"].endswith("/sandbox/crmconnect/")
        for url in links.values():
            assert (await http.get(url, follow_redirects=True)).status_code == 200, url
        page = await http.get(links["crmconnect"], follow_redirects=True)
        assert "ada@example.com" in page.text
        assert f'href="/sandbox/crmconnect/locations/{SANDBOX_LOCATION_ID}/invoices/' in page.text


async def test_reset_sandboxes_starts_them_empty(tmp_path: Path) -> None:
    port = free_port()
    async with server(tmp_path, port) as (_, http, engines):
        await http.post("/sandbox/crmconnect/_control/contacts", json={"locationId": SANDBOX_LOCATION_ID,
                                                                        "email": "ada@example.com"})  # fmt: skip
        await http.post("/sandbox/quickbooks/_control/companies", json={"name": "Second"})
        assert len(engines["quickbooks"].companies) == 2

    assert sandboxes.reset_state(tmp_path) == ["crmconnect", "quickbooks"]
    assert sandboxes.reset_state(tmp_path) == []

    async with server(tmp_path, port) as (_, http, engines):
        assert not engines["crmconnect"].state.contacts
        assert SANDBOX_TOKEN in engines["crmconnect"].state.pit_tokens
        assert len(engines["quickbooks"].companies) == 1


async def test_the_reset_buttons_forget_on_purpose_and_the_restart_remembers_that(tmp_path: Path) -> None:
    port = free_port()
    async with server(tmp_path, port) as (_, http, engines):
        await http.post("/sandbox/crmconnect/_control/contacts", json={"locationId": SANDBOX_LOCATION_ID,
                                                                        "email": "ada@example.com"})  # fmt: skip
        await http.post("/sandbox/quickbooks/_control/companies", json={"name": "Second"})
        crm_reset = await http.post("/sandbox/crmconnect/reset")
        assert crm_reset.status_code == 303 and crm_reset.headers["location"] == "/sandbox/crmconnect/?done=reset"
        qbo_reset = await http.post("/sandbox/quickbooks/reset")
        assert qbo_reset.status_code == 303 and qbo_reset.headers["location"].endswith("/sandbox/quickbooks/companies")
        assert "Reset the sandbox" in (await http.get("/sandbox/quickbooks/companies")).text
    async with server(tmp_path, port) as (_, http, engines):
        assert not engines["crmconnect"].state.contacts
        assert len(engines["quickbooks"].companies) == 1


def test_serve_has_a_reset_sandboxes_flag() -> None:
    args = build_parser(None).parse_args(["serve", "--reset-sandboxes"])
    assert isinstance(args, argparse.Namespace) and args.reset_sandboxes is True
