"""Fixtures: a sandbox served on loopback, its engine, and a helper to walk the authorize form."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ledgerbridge.testing import serve_in_thread
from ledgerbridge_quickbooks.sandbox import AppRegistration, Sandbox, SandboxConfig, create_app
from starlette.applications import Starlette

CLIENT_ID = "ABsandboxclient"
CLIENT_SECRET = "sandbox-secret"
REDIRECT_URI = "http://localhost:5000/callback"
VERIFIER = "verify_me"


@dataclass
class Running:
    url: str
    app: Starlette
    sandbox: Sandbox

    @property
    def realm(self) -> str:
        return next(iter(self.sandbox.companies))

    @property
    def discovery(self) -> str:
        return self.url + "/.well-known/openid_sandbox_configuration/"

    def api(self, path: str) -> str:
        return f"{self.url}/v3/company/{self.realm}/{path}"

    def headers(self, client_id: str = CLIENT_ID) -> dict[str, str]:
        tokens = self.sandbox.issue_tokens(client_id, self.realm)
        return {"Authorization": "Bearer " + tokens["access_token"], "Accept": "application/json"}


def make_config(**overrides: Any) -> SandboxConfig:
    app = AppRegistration(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI], VERIFIER)
    return SandboxConfig(apps=overrides.pop("apps", [app]), **overrides)


@contextlib.contextmanager
def running_sandbox(**overrides: Any) -> Iterator[Running]:
    """Serve a fresh sandbox; base_url is set once the port is known (nothing is emitted before)."""
    config = make_config(**overrides)
    app = create_app(config)
    with serve_in_thread(app) as url:
        app.state.sandbox.base_url = url
        yield Running(url, app, app.state.sandbox)


@pytest.fixture
def server() -> Iterator[Running]:
    with running_sandbox() as running:
        yield running


def authorize(
    client: httpx.Client, authorize_url: str, *, choice: str | None = None, action: str = "allow", **extra: str
) -> dict[str, list[str]]:
    """Drive the HTML form like a browser without JavaScript; returns the redirect's query parameters."""
    page = client.get(authorize_url)
    assert page.status_code == 200, page.text
    action_url = unescape(re.search(r"<form method='post' action='([^']+)'", page.text)[1])  # type: ignore[index]
    fields = {
        name: unescape(value) for name, value in re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text)
    }
    realms = re.findall(r"name='realm_id' value='([^']+)'", page.text)
    fields.update({"email": "owner@example.com", "realm_id": choice or realms[0], "action": action, **extra})
    answer = client.post(action_url, data=fields, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(fields["redirect_uri"])
    return parse_qs(urlsplit(location).query)
