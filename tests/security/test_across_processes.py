"""Two servers on one data dir agree through the store: one QuickBooks token refresh per expiry, however many
servers and tasks find the token expired at once."""

from __future__ import annotations

import asyncio
import re
from html import unescape
from pathlib import Path

import httpx
import msgspec
import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
from ledgerbridge_quickbooks.sandbox import create_app as create_qb_sandbox
from ledgerbridge_quickbooks.service import service_for
from ledgerbridge_quickbooks.tokens import load_connection, save_connection

from tests.security.conftest import ADMIN, product_settings, real_plugins

CLIENT_ID, CLIENT_SECRET = "two-servers-client", "two-servers-secret"


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
        services = [service_for(runtime.plugin_context("quickbooks")) for runtime in runtimes]
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
