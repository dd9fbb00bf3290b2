"""Each account is sealed: its own CRM location, conflicts refused in plain words, restarts that still serve."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import httpx
import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge.web.outbound import OutboundGuard, UnsafeUrl, resolve_checked
from ledgerbridge_crmconnect.connection import SANDBOX_LOCATION_ID
from ledgerbridge_crmconnect.poller import TICK_ENV

from tests.security.conftest import ADMIN, Product, product_settings, real_plugins

CARD = "/admin/api/accounts/{}/plugins/crmconnect/card"


async def crm_location(product: Product, account: str) -> str | None:
    await product.http.get(CARD.format(account), headers=ADMIN)  # the card resolves the connection
    detail = (await product.http.get(f"/admin/api/accounts/{account}", headers=ADMIN)).json()
    return next(p["external_id"] for p in detail["plugins"] if p["name"] == "crmconnect")


async def test_a_second_account_gets_a_crm_sandbox_location_of_its_own(product: Product) -> None:
    for name in ("Acme", "Globex"):
        assert (await product.http.post("/admin/api/accounts", json={"name": name}, headers=ADMIN)).status_code == 201
    acme, globex = await crm_location(product, "acme"), await crm_location(product, "globex")
    assert acme == SANDBOX_LOCATION_ID
    assert globex and globex != acme
    locations = (await product.http.get("/sandbox/crmconnect/_control/locations")).json()["locations"]
    assert {acme, globex} <= {location["id"] for location in locations}
    cards = [(await product.http.get(CARD.format(a), headers=ADMIN)).json() for a in ("acme", "globex")]
    assert [card["status"] for card in cards] == ["connected", "connected"]


async def test_cards_opened_at_once_for_a_new_account_agree_on_one_crm_sandbox_location(product: Product) -> None:
    for name in ("Acme", "Globex"):
        await product.http.post("/admin/api/accounts", json={"name": name}, headers=ADMIN)
    assert await crm_location(product, "acme") == SANDBOX_LOCATION_ID
    cards = await asyncio.gather(*(product.http.get(CARD.format("globex"), headers=ADMIN) for _ in range(8)))
    shown = {next(f["value"] for f in card.json()["fields"] if f["label"] == "Location") for card in cards}
    assert len(shown) == 1 and shown != {SANDBOX_LOCATION_ID}
    assert await crm_location(product, "globex") == shown.pop()  # the routing agrees with the credentials
    activity = (await product.http.get("/admin/api/accounts/globex/activity", headers=ADMIN)).json()
    assert sum("sandbox location" in entry["message"] for entry in activity) == 1


async def use_the_sandbox_api(product: Product, account: str) -> None:
    response = await product.http.patch(f"/admin/api/accounts/{account}/plugins/crmconnect/settings", headers=ADMIN,
                                        json={"api_base_url": f"{product.url}/sandbox/crmconnect", "sandbox": True})  # fmt: skip
    assert response.status_code == 200, response.text


async def test_connecting_to_a_location_another_account_holds_is_a_409_in_plain_words_that_changes_nothing(
    product: Product,
) -> None:
    for name in ("Acme", "Globex"):
        await product.http.post("/admin/api/accounts", json={"name": name}, headers=ADMIN)
    await crm_location(product, "acme")
    await use_the_sandbox_api(product, "globex")
    before = product.snapshot()
    response = await product.http.post("/plugins/crmconnect/accounts/globex/connect", headers=ADMIN,
                                       json={"location_id": SANDBOX_LOCATION_ID, "token": "ledgerbridge-sandbox-pit"})  # fmt: skip
    assert response.status_code == 409
    assert "already connected to the account 'Acme'" in response.json()["error"]["message"]
    assert product.snapshot() == before


@pytest.mark.parametrize(
    ("location", "token", "words"),
    [
        (SANDBOX_LOCATION_ID, "not-the-token", "refused this token"),
        ("someoneElsesLocation", "ledgerbridge-sandbox-pit", "refused this token"),
        ("has spaces", "x", "letters, digits"),
    ],
)
async def test_crm_connect_checks_the_token_and_location_with_the_crm_before_saving_anything(
    product: Product, location: str, token: str, words: str
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    await use_the_sandbox_api(product, "acme")
    before = product.snapshot()
    response = await product.http.post("/plugins/crmconnect/accounts/acme/connect", headers=ADMIN,
                                       json={"location_id": location, "token": token})  # fmt: skip
    assert response.status_code == 422
    assert words in response.json()["error"]["message"]
    assert product.snapshot() == before


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "https://169.254.169.254/latest",
        "https://[::ffff:169.254.169.254]/",
        "https://10.0.0.8/",
        "https://192.168.1.1/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:secret@example.com/",
        "http://example.com/",
        "https://metadata.google.internal/",
    ],
)
async def test_an_unsafe_crm_api_url_is_refused_as_a_setting(product: Product, url: str) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    before = product.snapshot()
    response = await product.http.patch("/admin/api/accounts/acme/plugins/crmconnect/settings",
                                        json={"api_base_url": url}, headers=ADMIN)  # fmt: skip
    assert response.status_code == 422
    assert "api_base_url is not allowed" in response.json()["error"]["message"]
    assert product.snapshot() == before


async def test_a_name_that_resolves_to_this_machine_or_a_private_address_is_refused_before_any_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {"rebound.example": "169.254.169.254", "inside.example": "10.0.0.7", "home.example": "127.0.0.1"}

    async def getaddrinfo(host: str, port: int, **kwargs: object) -> list[tuple[object, ...]]:
        return [(2, 1, 6, "", (answers[host], port))]  # what a resolver under an attacker's control answers

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    for host, words in (("rebound", "link-local"), ("inside", "private"), ("home", "this machine")):
        with pytest.raises(UnsafeUrl, match=words):
            await resolve_checked(f"https://{host}.example/", allow_loopback=True)
    sent: list[httpx.Request] = []
    guard = OutboundGuard(allow_loopback=True)
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    async with httpx.AsyncClient(transport=transport, event_hooks={"request": [guard]}) as http:
        for url in ("http://169.254.169.254/latest/meta-data", "https://10.1.2.3/", "http://example.com/"):
            with pytest.raises(httpx.ConnectError, match="refused to call"):
                await http.get(url)
        assert (await http.get("http://127.0.0.1:9/contacts")).status_code == 200  # a sandbox on this machine
    assert [str(r.url) for r in sent] == ["http://127.0.0.1:9/contacts"]


async def test_without_a_mounted_sandbox_an_account_without_credentials_is_not_connected(
    tmp_path: Path, clean_env: None
) -> None:
    port = free_port()
    settings = product_settings(tmp_path, port)
    app = create_app(settings, runtime=Runtime(settings, real_plugins()), mount_sandboxes=False)
    async with running_server(app, port=port) as url, httpx.AsyncClient(base_url=url) as http:
        await http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
        card = (await http.get(CARD.format("acme"), headers=ADMIN)).json()
        assert card["status"] == "not_connected"
        assert "sandbox" not in str(card["fields"]).lower()


async def test_a_restart_with_several_accounts_and_a_conflicting_location_serves_and_shows_the_conflict(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TICK_ENV, "0.1")
    data = tmp_path / "data"
    for attempt in range(2):
        port = free_port()
        settings = product_settings(data, port)
        app = create_app(settings, runtime=Runtime(settings, real_plugins()))
        async with running_server(app, port=port) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            product = Product(url, app.state.runtime, app, data, http)
            if attempt == 0:
                for name in ("Acme", "Globex", "Initech"):
                    await http.post("/admin/api/accounts", json={"name": name}, headers=ADMIN)
                locations = {a: await crm_location(product, a) for a in ("acme", "globex", "initech")}
                assert len(set(locations.values())) == 3
                # an old install's state: a second account set to Acme's location (whichever the pollers gave it)
                await app.state.runtime.store.set_plugin_settings("initech", "crmconnect",
                                                                  {"location_id": locations["acme"]})  # fmt: skip
                # and settings written before URLs were checked: the metadata service as the CRM API
                await http.post("/admin/api/accounts", json={"name": "Umbrella"}, headers=ADMIN)
                await app.state.runtime.store.set_plugin_settings("umbrella", "crmconnect",
                                                                  {"api_base_url": "http://169.254.169.254"})  # fmt: skip
                continue
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            card = (await http.get(CARD.format("initech"), headers=ADMIN)).json()
            assert card["status"] == "reconnect_needed"
            await asyncio.sleep(0.5)  # a few poller ticks (0.1 s): the conflict is said once, not every tick
            activity = (await http.get("/admin/api/accounts/initech/activity", headers=ADMIN)).json()
            said = [entry["message"] for entry in activity]
            assert sum("already connected to the account" in message for message in said) == 1, (card, said)
            assert "already connected to the account 'Acme'" in card["summary"]
            acme = (await http.get(CARD.format("acme"), headers=ADMIN)).json()
            assert acme["status"] == "connected", acme["summary"]
            assert (await http.get(CARD.format("globex"), headers=ADMIN)).json()["status"] == "connected"
            umbrella = (await http.get("/admin/api/accounts/umbrella", headers=ADMIN)).json()
            crm = next(p for p in umbrella["plugins"] if p["name"] == "crmconnect")
            assert "could not start for this account" in crm["paused_reason"]
            assert "api_base_url is not allowed" in crm["paused_reason"]


FAILING_PLUGIN = """
from ledgerbridge import hookimpl


@hookimpl
async def startup(plugin):
    raise RuntimeError("this plugin cannot start")
"""


@pytest.mark.slow
async def test_a_server_whose_start_fails_exits_non_zero_promptly(tmp_path: Path, clean_env: None) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken.py").write_text(FAILING_PLUGIN)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledgerbridge.cli", "serve", "--data-dir", str(tmp_path / "data"),
        "--port", str(free_port()), "--plugins-dir", str(plugins),
        env=os.environ.copy(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode not in (0, None)
    assert time.monotonic() - started < 30
    assert b"this plugin cannot start" in err
