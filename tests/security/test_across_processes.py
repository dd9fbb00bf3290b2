"""Two servers on one data dir agree through the store: one QuickBooks token refresh per expiry, however many
servers and tasks find the token expired at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
from ledgerbridge_quickbooks.sandbox import create_app as create_qb_sandbox
from ledgerbridge_quickbooks.tokens import load_connection, save_connection
from ledgerbridge_quickbooks.webhooks import sign

from tests.security.conftest import ADMIN, product_settings, real_plugins

CLIENT_ID, CLIENT_SECRET, VERIFIER = "two-servers-client", "two-servers-secret", "two-servers-verifier"


async def connect(http: httpx.AsyncClient, url: str) -> None:
    """QB Connect on the first server, the user allowing it on the sandbox's consent form."""
    start = await http.get(f"{url}/plugins/quickbooks/connect", params={"account": "acme"}, headers=ADMIN)
    page = await http.get(start.headers["location"])
    action = unescape(re.search(r"<form method='post' action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
    form = {
        unescape(n): unescape(v)
        for n, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text)
    }
    form.update({"email": "owner@example.com", "realm_id": re.findall(r"name='realm_id' value='(\d+)'", page.text)[0],
                 "action": "allow"})  # fmt: skip
    consent = await http.post(action, data=form)
    done = await http.get(consent.headers["location"])
    assert done.status_code in (200, 303), done.text


@pytest.mark.slow
async def test_two_servers_sharing_a_data_dir_refresh_an_expired_token_exactly_once_for_50_callers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    sandbox_port, ports = free_port(), [free_port(), free_port()]
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox = create_qb_sandbox(SandboxConfig(base_url=sandbox_url, apps=[AppRegistration(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        redirect_uris=[f"http://127.0.0.1:{port}/plugins/quickbooks/callback" for port in ports])]))  # fmt: skip
    monkeypatch.setenv("LEDGERBRIDGE_QBO_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("LEDGERBRIDGE_QBO_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("LEDGERBRIDGE_QBO_ENVIRONMENT", f"{sandbox_url}/.well-known/openid_configuration")
    monkeypatch.setenv("LEDGERBRIDGE_QBO_CONTACTS_EVERY", "3600")
    data = tmp_path / "data"
    runtimes = []
    apps = []
    for port in ports:
        settings = product_settings(data, port)
        runtime = Runtime(settings, real_plugins())
        runtimes.append(runtime)
        apps.append(create_app(settings, runtime=runtime, mount_sandboxes=False))
    async with (
        running_server(sandbox, port=sandbox_port),
        running_server(apps[0], port=ports[0]) as first_url,
        running_server(apps[1], port=ports[1]),
        httpx.AsyncClient(timeout=30) as http,
    ):
        await http.post(f"{first_url}/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
        await connect(http, first_url)
        contexts = [await runtime.plugin_context("quickbooks").account("acme") for runtime in runtimes]
        assert contexts[0] is not None and contexts[1] is not None
        plugins = [runtime.plugins.plugin("quickbooks") for runtime in runtimes]
        assert all(isinstance(plugin, QuickBooksPlugin) for plugin in plugins)
        services = [plugin.service for plugin in plugins]  # type: ignore[attr-defined]
        stored = await load_connection(contexts[0])
        assert stored is not None
        expired = msgspec.structs.replace(stored, access_expires_at=contexts[0].now() - 1)
        await save_connection(contexts[0], expired)
        for service in services:
            service.tokens.forget("acme")
            service.tokens.refreshes = 0

        tokens = await asyncio.gather(
            *(services[n % 2].tokens.access_token(contexts[n % 2]) for n in range(50))  # type: ignore[arg-type]
        )

        assert services[0].tokens.refreshes + services[1].tokens.refreshes == 1
        assert len(set(tokens)) == 1 and tokens[0] != stored.access_token
        latest = await load_connection(contexts[1])  # type: ignore[arg-type]
        assert latest is not None and latest.access_token == tokens[0]


class CountingRefreshes:
    """The QuickBooks sandbox as the vendor, counting refresh-token grants at its token endpoint (slowly)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.refreshes = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/oauth2/v1/tokens/bearer"):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        if b"grant_type=refresh_token" in body:
            self.refreshes += 1
            await asyncio.sleep(1.0)  # a slow token endpoint: both servers find the token expired meanwhile
        sent = False

        async def replay() -> Any:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def start_server(data: Path, port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ledgerbridge.cli", "serve", "--data-dir", str(data), "--port", str(port),
        env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    async with httpx.AsyncClient() as http:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return process
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("the server did not start")


@pytest.mark.slow
async def test_two_server_processes_on_one_data_dir_refresh_once_when_50_deliveries_find_the_token_expired(
    tmp_path: Path, clean_env: None
) -> None:
    sandbox_port, ports = free_port(), [free_port(), free_port()]
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    engine_app = create_qb_sandbox(SandboxConfig(base_url=sandbox_url, apps=[AppRegistration(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, verifier_token=VERIFIER,
        redirect_uris=[f"http://127.0.0.1:{port}/plugins/quickbooks/callback" for port in ports])]))  # fmt: skip
    vendor = CountingRefreshes(engine_app)
    env = {
        "LEDGERBRIDGE_ADMIN_TOKEN": ADMIN["Authorization"].removeprefix("Bearer "),
        "LEDGERBRIDGE_QBO_CLIENT_ID": CLIENT_ID, "LEDGERBRIDGE_QBO_CLIENT_SECRET": CLIENT_SECRET,
        "LEDGERBRIDGE_QBO_VERIFIER_TOKEN": VERIFIER, "LEDGERBRIDGE_QBO_CONTACTS_EVERY": "3600",
        "LEDGERBRIDGE_QBO_ENVIRONMENT": f"{sandbox_url}/.well-known/openid_configuration",
    }  # fmt: skip
    data = tmp_path / "data"
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    async with running_server(vendor, port=sandbox_port), httpx.AsyncClient(timeout=30) as http:
        first = await start_server(data, ports[0], env)
        second = await start_server(data, ports[1], env)
        try:
            await http.post(f"{urls[0]}/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
            await connect(http, urls[0])
            realm = (await http.get(f"{sandbox_url}/_control/state")).json()["connections"][0][1]
            assert (await http.post(f"{sandbox_url}/_control/clock/advance", json={"seconds": 7200})).is_success
            refreshes_before = vendor.refreshes

            async def notify(n: int) -> httpx.Response:
                body = json.dumps({"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": [
                    {"name": "Invoice", "id": str(1000 + n), "operation": "Update",
                     "lastUpdated": f"2026-01-01T00:00:{n:02d}Z"}]}}]}).encode()  # fmt: skip
                return await http.post(f"{urls[n % 2]}/plugins/quickbooks/webhooks", content=body,
                                       headers={"intuit-signature": sign(VERIFIER, body)})  # fmt: skip

            answers = await asyncio.gather(*(notify(n) for n in range(50)))
            assert [a.json()["accepted"] for a in answers] == [1] * 50

            async def settled() -> bool:
                counts = (await http.get(f"{urls[0]}/admin/api/accounts/acme", headers=ADMIN)).json()["deliveries"]
                return counts.get("pending", 0) == 0 and sum(counts.values()) >= 50

            for _ in range(300):
                if await settled():
                    break
                await asyncio.sleep(0.1)
            assert await settled()
            assert vendor.refreshes - refreshes_before == 1
            dead = (await http.get(f"{urls[0]}/admin/api/accounts/acme/deliveries?state=dead", headers=ADMIN)).json()
            assert dead == []
        finally:
            for process in (first, second):
                process.terminate()
                await asyncio.wait_for(process.wait(), 20)
