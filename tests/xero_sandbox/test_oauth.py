"""Identity: the consent page, PKCE, single-use codes, refresh rotation with its grace period, revocation,
/connections and the bearer and tenant checks of the Accounting API."""

from __future__ import annotations

import base64
import json

import httpx
from ledgerbridge_xero.sandbox import Sandbox

from .conftest import API, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Connected, connect, consent, pkce_pair


def _claims(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_pkce_code_exchange_gives_tokens_and_a_connection_for_the_chosen_tenant(
    sandbox: tuple[httpx.AsyncClient, Sandbox],
) -> None:
    http, engine = sandbox
    uk = engine.by_name("Demo Company (UK)")
    connected = await connect(http, engine, tenant=uk.tenant_id)
    assert connected.tenant_id == uk.tenant_id
    assert connected.tokens["token_type"] == "Bearer" and connected.tokens["expires_in"] == 1800
    claims = _claims(connected.tokens["access_token"])
    connections = (
        await http.get(
            "/connections",
            headers={"Authorization": "Bearer " + connected.tokens["access_token"]},
            params={"authEventId": claims["authentication_event_id"]},
        )
    ).json()
    assert [(c["tenantId"], c["tenantName"], c["tenantType"]) for c in connections] == [
        (uk.tenant_id, "Demo Company (UK)", "ORGANISATION")
    ]


async def test_a_wrong_code_verifier_or_a_reused_code_is_invalid_grant(
    sandbox: tuple[httpx.AsyncClient, Sandbox],
) -> None:
    http, _ = sandbox
    verifier, challenge = pkce_pair()
    code = (await consent(http, challenge=challenge))["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID}
    wrong = await http.post("/connect/token", data={**form, "code_verifier": "not-the-verifier"})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    again = await http.post("/connect/token", data={**form, "code_verifier": verifier})
    assert again.json()["error"] == "invalid_grant"  # a code is single-use, even after a failed attempt


async def test_without_pkce_the_client_secret_is_required(sandbox: tuple[httpx.AsyncClient, Sandbox]) -> None:
    http, _ = sandbox
    code = (await consent(http, challenge=None))["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID}
    refused = await http.post("/connect/token", data=form)
    assert refused.status_code == 401
    code = (await consent(http, challenge=None))["code"][0]
    ok = await http.post("/connect/token", data={**form, "code": code}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert ok.status_code == 200 and ok.json()["refresh_token"]


async def test_refresh_rotates_and_the_old_token_works_only_in_its_grace_period(xero: Connected) -> None:
    http, engine = xero.http, xero.sandbox
    first = xero.tokens["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    rotated = (await http.post("/connect/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))).json()
    assert rotated["refresh_token"] != first
    old_access = await http.get(API + "/Contacts", headers=xero.headers)
    assert old_access.status_code == 200  # the previous access token lives until it expires
    lost = (await http.post("/connect/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))).json()
    assert lost["refresh_token"] not in (first, rotated["refresh_token"])  # the lost reply can be fetched again
    now = engine.clock()
    engine.identity.clock = lambda: now + 1801
    late = await http.post("/connect/token", data=form, auth=(CLIENT_ID, CLIENT_SECRET))
    assert late.json() == {"error": "invalid_grant"}


async def test_api_needs_a_bearer_token_and_a_connected_tenant(xero: Connected) -> None:
    no_token = await xero.http.get(API + "/Contacts", headers={"xero-tenant-id": xero.tenant_id})
    assert no_token.status_code == 401 and no_token.json()["Title"] == "Unauthorized"
    other = xero.sandbox.by_name("Demo Company (UK)").tenant_id
    forbidden = await xero.get("/Contacts", headers={"xero-tenant-id": other})
    assert forbidden.status_code == 403 and forbidden.json()["Title"] == "Forbidden"


async def test_revocation_ends_the_connection(xero: Connected) -> None:
    revoked = await xero.http.post(
        "/connect/revocation", data={"token": xero.tokens["refresh_token"]}, auth=(CLIENT_ID, CLIENT_SECRET)
    )
    assert revoked.status_code == 200
    assert (await xero.get("/Contacts")).status_code == 401


async def test_deleting_a_connection_disconnects_the_tenant(xero: Connected) -> None:
    bearer = {"Authorization": "Bearer " + xero.tokens["access_token"]}
    connection = (await xero.http.get("/connections", headers=bearer)).json()[0]
    assert (await xero.http.delete(f"/connections/{connection['id']}", headers=bearer)).status_code == 204
    assert (await xero.get("/Contacts")).status_code == 403
