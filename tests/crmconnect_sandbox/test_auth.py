"""Bearer tokens, the Version header, and the marketplace OAuth flow with refresh-token rotation."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from .conftest import LOCATION, Sandbox

ALT = {"altId": LOCATION, "altType": "location"}
UNAUTHORIZED = {"statusCode": 401, "message": "Invalid token: access token is invalid", "error": "Unauthorized"}


async def test_bad_or_missing_token_is_401(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as raw:
        r = await raw.get("/invoices/", params=ALT, headers={"Authorization": "Bearer nope", "Version": "2021-07-28"})
        assert r.status_code == 401 and r.json() == UNAUTHORIZED
        r = await raw.get("/invoices/", params=ALT, headers={"Version": "2021-07-28"})
        assert r.status_code == 401 and r.json() == UNAUTHORIZED


async def test_missing_version_is_422_with_a_message_list(sandbox: Sandbox) -> None:
    r = await sandbox.api.get("/contacts/search/duplicate", params={"locationId": LOCATION}, headers={"Version": ""})
    assert r.status_code == 422
    body = r.json()
    assert body["statusCode"] == 422 and body["error"] == "Unprocessable Entity" and isinstance(body["message"], list)


async def test_conversations_want_their_own_version(sandbox: Sandbox) -> None:
    contact = await sandbox.contact()
    body = {"type": "Email", "contactId": contact["id"], "subject": "Thanks", "html": "<p>Review us</p>"}
    wrong = await sandbox.api.post("/conversations/messages", json=body)  # the client's default 2021-07-28
    assert wrong.status_code == 422
    right = await sandbox.api.post("/conversations/messages", json=body, headers={"Version": "2021-04-15"})
    assert right.status_code == 200 and right.json()["messageId"] and right.json()["conversationId"]
    sms = await sandbox.api.post(
        "/conversations/messages",
        headers={"Version": "2021-04-15"},
        json={"type": "SMS", "contactId": contact["id"], "message": "Review us"},
    )
    assert sms.status_code == 200
    sent = (await sandbox.control("GET", "/messages"))["messages"]
    assert [(m["type"], m["to"]) for m in sent] == [("Email", "ada@example.com"), ("SMS", "+15555550100")]
    assert sent[0]["html"] == "<p>Review us</p>" and sent[0]["subject"] == "Thanks"


async def _authorize(sandbox: Sandbox, client: httpx.AsyncClient) -> str:
    page = await client.get(
        "/oauth/chooselocation",
        params={
            "response_type": "code",
            "client_id": "client-1",
            "redirect_uri": "http://app.test/callback",
            "scope": "contacts.write",
        },
    )
    assert page.status_code == 200 and LOCATION in page.text
    chosen = await client.post(
        "/oauth/chooselocation",
        data={
            "client_id": "client-1",
            "location_id": LOCATION,
            "redirect_uri": "http://app.test/callback",
            "state": "xyz",
        },
    )
    assert chosen.status_code == 302
    location = urlsplit(chosen.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "http://app.test/callback"
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]
    return query["code"][0]


async def test_oauth_code_exchange_refresh_rotation_and_expiry(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        code = await _authorize(sandbox, client)
        form = {
            "client_id": "client-1",
            "client_secret": "secret-1",
            "grant_type": "authorization_code",
            "code": code,
            "user_type": "Location",
            "redirect_uri": "http://app.test/callback",
        }
        tokens = (await client.post("/oauth/token", data=form)).json()
        assert tokens["token_type"] == "Bearer" and tokens["locationId"] == LOCATION and tokens["expires_in"] == 86399
        assert (await client.post("/oauth/token", data=form)).status_code == 400  # codes are single-use
        headers = {"Authorization": f"Bearer {tokens['access_token']}", "Version": "2021-07-28"}
        assert (
            await client.get("/invoices/", params={**ALT, "limit": 5, "offset": 0}, headers=headers)
        ).status_code == 200

        refresh = {
            "client_id": "client-1",
            "client_secret": "secret-1",
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "user_type": "Location",
        }
        rotated = (await client.post("/oauth/token", data=refresh)).json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert (await client.post("/oauth/token", data=refresh)).status_code == 400  # the old one is spent

        await sandbox.control("POST", "/oauth/expire-tokens")
        expired = await client.get("/invoices/", params={**ALT, "limit": 5, "offset": 0}, headers=headers)
        assert expired.status_code == 401
        bad_secret = await client.post("/oauth/token", data={**refresh, "client_secret": "wrong"})
        assert bad_secret.status_code == 401


async def test_company_tokens_cannot_call_location_routes(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as client:
        code = await _authorize(sandbox, client)
        tokens = (
            await client.post(
                "/oauth/token",
                data={
                    "client_id": "client-1",
                    "client_secret": "secret-1",
                    "grant_type": "authorization_code",
                    "code": code,
                    "user_type": "Company",
                },
            )
        ).json()
        assert tokens["userType"] == "Company" and "locationId" not in tokens
        r = await client.get(
            "/payments/transactions",
            params=ALT,
            headers={"Authorization": f"Bearer {tokens['access_token']}", "Version": "2021-07-28"},
        )
        assert r.status_code == 401
