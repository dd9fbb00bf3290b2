"""No way in through the browser: a page on another origin cannot change anything with the admin's cookie."""

from __future__ import annotations

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from tests.security.conftest import ADMIN, Product, SignedIn

SAFE = {"GET", "HEAD", "OPTIONS"}
PARAMS = {"account_id": "acme", "plugin": "crmconnect", "delivery_id": "1"}
ATTACKS = {
    "foreign site": {"origin": "http://evil.example"},
    "same host, another port": {"origin": "http://127.0.0.1:1"},
    "sandboxed frame": {"origin": "null"},
    "same-site subdomain (no Origin)": {"sec-fetch-site": "same-site"},
    "old browser (no Origin)": {},
}


def state_changing_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, str]]:
    """(method, path) of every route that accepts the session: all but the sandboxes, webhooks and sign-in."""
    found = []
    for route in routes:
        if isinstance(route, Mount):
            if route.path.startswith("/sandbox") or route.path == "/static":
                continue
            found += state_changing_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            path = prefix + route.path
            if "webhook" in path or path == "/signin":
                continue
            for method in sorted((route.methods or set()) - SAFE):
                found.append((method, path.format(**PARAMS) + ("?account=acme" if "quickbooks" in path else "")))
    return found


async def test_the_route_table_has_every_kind_of_state_change(product: Product) -> None:
    routes = state_changing_routes(list(product.app.routes))
    for expected in [
        ("POST", "/admin/api/accounts"),
        ("DELETE", "/admin/api/accounts/acme"),
        ("POST", "/admin/api/accounts/acme/deliveries/1/replay"),
        ("POST", "/plugins/crmconnect/accounts/acme/connect"),
        ("POST", "/plugins/quickbooks/disconnect?account=acme"),
        ("POST", "/accounts"),
        ("POST", "/signout"),
    ]:
        assert expected in routes


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_cookie_only_text_plain_request_from_another_origin_is_refused_everywhere_and_changes_nothing(
    product: Product, browser: SignedIn, attack: str
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    before = product.snapshot()
    for method, path in state_changing_routes(list(product.app.routes)):
        response = await browser.client.request(
            method,
            path,
            content=b'{"name": "Mallory", "location_id": "evil", "token": "x", "enabled": false}',
            headers={"content-type": "text/plain", "accept": "application/json", **ATTACKS[attack]},
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        assert "refused" in response.json()["error"]["message"] or "CSRF" in response.json()["error"]["message"]
    assert product.snapshot() == before
    assert await browser.is_signed_in()


async def test_a_json_request_with_the_session_but_a_foreign_origin_is_refused(
    product: Product, browser: SignedIn
) -> None:
    response = await browser.client.post(
        "/admin/api/accounts", json={"name": "Mallory"}, headers={"origin": "http://127.0.0.1:1"}
    )
    assert response.status_code == 403
    assert (await product.http.get("/admin/api/accounts", headers=ADMIN)).json() == []


async def test_the_servers_own_pages_still_change_things(product: Product, browser: SignedIn) -> None:
    form = await browser.client.post("/accounts", data={"csrf_token": browser.csrf, "name": "Acme"})
    assert form.status_code == 303
    header = await browser.client.post("/admin/api/accounts", json={"name": "Globex"},
                                       headers={"x-csrf-token": browser.csrf})  # fmt: skip
    assert header.status_code == 201
    same_origin = await browser.client.post("/admin/api/accounts", json={"name": "Initech"},
                                            headers={"origin": product.url})  # fmt: skip
    assert same_origin.status_code == 201
    bearer = await product.http.post("/admin/api/accounts", json={"name": "Umbrella"}, headers=ADMIN)
    assert bearer.status_code == 201
    names = {a["name"] for a in (await product.http.get("/admin/api/accounts", headers=ADMIN)).json()}
    assert names == {"Acme", "Globex", "Initech", "Umbrella"}


async def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(product: Product, browser: SignedIn) -> None:
    stolen = dict(browser.client.cookies)
    await browser.client.post("/signout", data={"csrf_token": browser.csrf})
    assert not await browser.is_signed_in()
    browser.client.cookies.clear()
    browser.client.cookies.update(stolen)  # the cookie as it was before signing out
    assert not await browser.is_signed_in()
    response = await browser.client.post("/admin/api/accounts", json={"name": "Mallory"},
                                         headers={"x-csrf-token": browser.csrf, "accept": "application/json"})  # fmt: skip
    assert response.status_code == 401


async def test_rotating_the_admin_token_ends_every_session(product: Product, browser: SignedIn) -> None:
    assert await browser.is_signed_in()
    product.app.state.admin_token = "a-brand-new-admin-token-after-rotation"  # what a restart with a new token does
    assert not await browser.is_signed_in()
    response = await browser.client.post("/admin/api/accounts", json={"name": "Mallory"},
                                         headers={"x-csrf-token": browser.csrf, "accept": "application/json"})  # fmt: skip
    assert response.status_code == 401


@pytest.mark.parametrize(
    "return_to", ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/\t/evil.example"]
)
async def test_after_qb_connect_the_browser_is_only_sent_to_a_path_on_this_server(
    product: Product, browser: SignedIn, return_to: str
) -> None:
    await product.http.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
    start = await browser.client.get("/plugins/quickbooks/connect", params={"account": "acme", "return_to": return_to})
    assert start.status_code == 302
    state = httpx.URL(start.headers["location"]).params["state"]
    back = await browser.client.get("/plugins/quickbooks/callback", params={"state": state, "error": "access_denied"})
    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith("/accounts/acme/settings/integrations?"), location
    assert "evil.example" not in location.split("?")[0]
