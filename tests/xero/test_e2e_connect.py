"""Connecting and disconnecting from the Xero card, through the sandbox's consent page."""

from __future__ import annotations

from .conftest import ADMIN, Harness

ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}", "Accept": "application/json"}


async def _card(harness: Harness) -> dict:
    response = await harness.http.get(f"{harness.url}/admin/api/accounts/acme/plugins/xero/card", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_card_offers_connect_then_shows_the_organisation(harness: Harness) -> None:
    before = await _card(harness)
    assert before["status"] == "not_connected" and before["actions"][0]["label"] == "Connect to Xero"
    result = await harness.connect(organisation="Demo Company (UK)")
    assert result["organisation"] == "Demo Company (UK)"
    after = await _card(harness)
    assert after["status"] == "connected" and after["summary"] == "Connected to Demo Company (UK)"
    assert {"label": "Payments booked as", "value": "Receive money"} in after["fields"]
    # PKCE was used, and the token endpoint saw the verifier (the sandbox refuses the code otherwise)
    assert any(c.client_id == "ledgerbridge-xero-sandbox-app" for c in harness.sandbox.identity.connections.values())


async def test_connect_needs_the_admin_and_a_fresh_state(harness: Harness) -> None:
    anonymous = await harness.http.get(f"{harness.url}/plugins/xero/connect", params={"account": "acme"})
    assert anonymous.status_code == 401
    replay = await harness.http.get(f"{harness.url}/plugins/xero/callback", params={"state": "made-up", "code": "x"})
    assert replay.status_code == 400


async def test_disconnect_removes_the_connection_in_xero_and_forgets_the_tokens(harness: Harness) -> None:
    await harness.connect()
    response = await harness.http.post(f"{harness.url}/plugins/xero/disconnect", params={"account": "acme"},
                                       headers=ADMIN_HEADERS)  # fmt: skip
    assert response.status_code == 200, response.text
    assert harness.sandbox.identity.connections == {}
    assert (await _card(harness))["status"] == "not_connected"
    assert any("disconnected from Xero" in line for line in await harness.activity())
