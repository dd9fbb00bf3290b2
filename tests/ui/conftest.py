from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import make_payment
from tests.ui.plugins import DemoBooks, Producer

TOKEN = "test-admin-token"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class UiServer:
    url: str
    runtime: Runtime
    books: DemoBooks

    async def pay(self, account: str, payment_id: str) -> None:
        ctx = await self.runtime.plugin_context("producer").account(account)
        assert ctx is not None
        await ctx.publish(make_payment(payment_id), external_id=f"evt-{payment_id}")


@pytest.fixture
async def ui_server(tmp_path: Path) -> AsyncIterator[UiServer]:
    books = DemoBooks()
    port = free_port()
    settings = fast_settings(tmp_path, port=port, max_attempts=2)
    runtime = Runtime(settings, manager_with({"producer": Producer(), "books": books}))
    app = create_app(runtime=runtime, mount_sandboxes=False)
    async with running_server(app, port=port) as url:
        await runtime.create_account("acme", "Acme Ltd")
        await runtime.create_account("globex", "Globex")
        yield UiServer(url, runtime, books)


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class Browser:
    """An httpx client that behaves like a browser with a cookie jar: it reads a page's CSRF token."""

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=10, headers={"accept": "text/html"})
        self.csrf = ""

    async def get(self, path: str) -> httpx.Response:
        response = await self.client.get(path)
        if CSRF.search(response.text):
            self.csrf = csrf_of(response.text)
        return response

    async def post(self, path: str, data: dict[str, str], *, csrf: bool = True) -> httpx.Response:
        form = {"csrf_token": self.csrf, **data} if csrf else data
        return await self.client.post(path, data=form)

    async def sign_in(self, token: str = TOKEN) -> httpx.Response:
        await self.get("/signin")
        response = await self.post("/signin", {"token": token, "next": "/"})
        await self.get("/")
        return response


@pytest.fixture
async def browser(ui_server: UiServer) -> AsyncIterator[Browser]:
    result = Browser(ui_server.url)
    async with result.client:
        yield result


@pytest.fixture
async def signed_in(browser: Browser) -> Browser:
    response = await browser.sign_in()
    assert response.status_code == 303
    return browser
