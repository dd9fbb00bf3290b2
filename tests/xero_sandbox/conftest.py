"""Fixtures: the Xero sandbox over httpx.ASGITransport, and a helper that walks the consent page with PKCE."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ledgerbridge_xero.sandbox import AppRegistration, Sandbox, SandboxConfig, create_app

BASE = "http://xero.test"
CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
REDIRECT_URI = "http://app.test/callback"
WEBHOOK_KEY = "webhook-key-123"
API = "/api.xro/2.0"


def make_config(**overrides: Any) -> SandboxConfig:
    app = AppRegistration(
        CLIENT_ID,
        CLIENT_SECRET,
        [REDIRECT_URI],
        webhook_url=overrides.pop("webhook_url", None),
        webhook_key=WEBHOOK_KEY,
    )
    return SandboxConfig(base_url=BASE, apps=overrides.pop("apps", [app]), **overrides)


@dataclass
class Connected:
    http: httpx.AsyncClient
    sandbox: Sandbox
    tokens: dict[str, Any]
    tenant_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            "xero-tenant-id": self.tenant_id,
            "Accept": "application/json",
        }

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(API + path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    async def put(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.put(
            API + path, json=body, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )

    async def post(self, path: str, body: Any, **kwargs: Any) -> httpx.Response:
        return await self.http.post(
            API + path, json=body, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs
        )


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def consent(
    http: httpx.AsyncClient,
    *,
    challenge: str | None,
    tenant: str | None = None,
    action: str = "allow",
    state: str = "s1",
    client_id: str = CLIENT_ID,
) -> dict[str, list[str]]:
    """Open the authorize page like a browser, choose an organisation, answer; the redirect's query."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "state": state,
        "scope": "openid profile email accounting.transactions accounting.contacts accounting.settings offline_access",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = await http.get("/identity/connect/authorize", params=params)
    assert page.status_code == 200, page.text
    action_url = unescape(re.search(r"<form method='post' action='([^']+)'", page.text)[1])  # type: ignore[index]
    fields = {
        unescape(n): unescape(v) for n, v in re.findall(r"type='hidden' name='([^']+)' value='([^']*)'", page.text)
    }
    tenants = re.findall(r"name='tenant_id' value='([^']+)'", page.text)
    fields.update(tenant_id=tenant or tenants[0], action=action, user="owner@example.com")
    answer = await http.post(action_url, data=fields)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"].startswith(REDIRECT_URI)
    return parse_qs(urlsplit(answer.headers["location"]).query)


async def connect(http: httpx.AsyncClient, sandbox: Sandbox, tenant: str | None = None) -> Connected:
    verifier, challenge = pkce_pair()
    query = await consent(http, challenge=challenge, tenant=tenant)
    response = await http.post(
        "/connect/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    connections = await http.get("/connections", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    return Connected(http, sandbox, tokens, connections.json()[0]["tenantId"])


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[httpx.AsyncClient, Sandbox]]:
    app = create_app(make_config())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http, app.state.sandbox


@pytest.fixture
async def xero(sandbox: tuple[httpx.AsyncClient, Sandbox]) -> Connected:
    http, engine = sandbox
    return await connect(http, engine)
