from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import ledgerbridge_crmconnect.plugin as crmconnect_plugin
import ledgerbridge_quickbooks.plugin as quickbooks_plugin
import pytest
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from starlette.applications import Starlette

from tests import stores

TOKEN = "security-test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VENDOR_ENV = [
    *(f"LEDGERBRIDGE_QBO_{n}" for n in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL")),
    "LEDGERBRIDGE_CRM_CLIENT_ID",
    "LEDGERBRIDGE_CRM_CLIENT_SECRET",
    "LEDGERBRIDGE_CRM_SANDBOX",
]


def real_plugins() -> PluginManager:
    manager = PluginManager()
    manager.register(quickbooks_plugin.QuickBooksPlugin, "quickbooks")
    manager.register(crmconnect_plugin.CrmConnectPlugin, "crmconnect")
    manager.check_pending()
    return manager


def product_settings(data_dir: Path, port: int, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir, "admin_token": TOKEN, "port": port, "public_url": f"http://127.0.0.1:{port}",
        "backoff_base_seconds": 0.05, "backoff_cap_seconds": 0.2, "poll_interval_seconds": 0.05,
    }  # fmt: skip
    values.update(overrides)
    if "database_url" not in values:
        values["database_url"] = stores.database_url()
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class Product:
    url: str
    runtime: Runtime
    app: Starlette
    data_dir: Path
    http: httpx.AsyncClient

    def snapshot(self) -> list[str]:
        """Every row of the database except the session leases (what a refused request must leave alone)."""
        with sqlite3.connect(self.data_dir / "ledgerbridge.db") as db:
            return [line for line in db.iterdump() if 'INSERT INTO "leases"' not in line]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def product(tmp_path: Path, clean_env: None) -> AsyncIterator[Product]:
    port = free_port()
    settings = product_settings(tmp_path / "data", port)
    runtime = Runtime(settings, real_plugins())
    app = create_app(settings, runtime=runtime)
    async with running_server(app, port=port) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        yield Product(url, runtime, app, settings.data_dir, http)


class SignedIn:
    """A browser's cookie jar after signing in, and the session's CSRF token."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30, headers={"accept": "text/html"})
        self.csrf = ""

    async def sign_in(self, token: str = TOKEN) -> httpx.Response:
        page = await self.client.get("/signin")
        self.csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
        response = await self.client.post("/signin", data={"csrf_token": self.csrf, "token": token, "next": "/"})
        home = await self.client.get("/")
        found = CSRF.search(home.text)
        if found:
            self.csrf = found.group(1)
        return response

    async def is_signed_in(self) -> bool:
        response = await self.client.get("/", follow_redirects=False)
        return response.status_code == 200


@pytest.fixture
async def browser(product: Product) -> AsyncIterator[SignedIn]:
    signed_in = SignedIn(product.url)
    async with signed_in.client:
        response = await signed_in.sign_in()
        assert response.status_code == 303
        yield signed_in
