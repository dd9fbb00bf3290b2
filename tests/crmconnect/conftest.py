"""A CRM Connect sandbox and a ledgerbridge server in front of it, both on loopback ports.

The server runs the crmconnect plugin, a recording consumer and a producer (standing in for the
QuickBooks plugin); the sandbox sends its signed webhooks to the server's /plugins/crmconnect/webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerbridge import AccountContext
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.store import NewEvent, SQLiteStore
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect import plugin as crmconnect
from ledgerbridge_crmconnect.poller import TICK_ENV
from ledgerbridge_crmconnect.sandbox import LocationSeed, SandboxConfig, SandboxEngine
from ledgerbridge_crmconnect.sandbox import create_app as create_sandbox

from tests import stores
from tests.core.plugins import Producer, Recorder

LOCATION = "locTestCrm0000000001"
TOKEN = "pit-crm-test-token"
ADMIN = "test-admin-token"
ACCOUNT = "acme"


class FlakyStore:
    """The real SQLite store, except that `append_events` fails `failures` times when armed."""

    def __init__(self, inner: SQLiteStore) -> None:
        self._inner = inner
        self.failures = 0

    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk I/O error (injected)")
        return await self._inner.append_events(events, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Stack:
    server_url: str
    sandbox_url: str
    engine: SandboxEngine
    runtime: Runtime
    store: FlakyStore
    recorder: Recorder
    http: httpx.AsyncClient

    async def account(self) -> AccountContext:
        ctx = await self.runtime.plugin_context("crmconnect").account(ACCOUNT)
        assert ctx is not None
        return ctx

    async def producer(self) -> AccountContext:
        ctx = await self.runtime.plugin_context("producer").account(ACCOUNT)
        assert ctx is not None
        return ctx

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.sandbox_url}/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def contact(self, email: str | None = "ada@example.com", **extra: Any) -> dict[str, Any]:
        body = {"locationId": LOCATION, "firstName": "Ada", "lastName": "Lovelace", **extra}
        if email:
            body["email"] = email
        return await self.control("POST", "/contacts", body)  # type: ignore[no-any-return]

    def calls(self, hook: str) -> list[Any]:
        return [value for _, name, value in self.recorder.calls if name == hook]

    async def settle(self, timeout: float = 10.0) -> dict[str, int]:
        """Wait until the sandbox has delivered every webhook and no delivery is pending in the server."""
        await self.engine.webhooks.drain(timeout)

        async def idle() -> dict[str, int]:
            while True:
                counts = await self.runtime.store.count_deliveries(ACCOUNT)
                if not counts.get("pending"):
                    return counts
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(idle(), timeout)

    async def wait_for(self, hook: str, count: int, timeout: float = 10.0) -> list[Any]:
        async def reached() -> list[Any]:
            while len(self.calls(hook)) < count:
                self.recorder.event.clear()
                await self.recorder.event.wait()
            return self.calls(hook)

        return await asyncio.wait_for(reached(), timeout)


def server_settings(tmp_path: Path, port: int) -> Settings:
    return Settings(
        data_dir=tmp_path,
        port=port,
        admin_token=ADMIN,
        secret_keys=None,
        backoff_base_seconds=0.01,
        backoff_cap_seconds=0.05,
        poll_interval_seconds=0.05,
        max_attempts=4,
        lease_seconds=30.0,
        database_url=stores.database_url(),
    )


@pytest.fixture
async def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv(TICK_ENV, "0.1")
    server_port, sandbox_port = free_port(), free_port()
    server_url, sandbox_url = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{sandbox_port}"
    sandbox_app = create_sandbox(
        SandboxConfig(
            base_url=sandbox_url,
            webhook_url=f"{server_url}/plugins/crmconnect/webhooks",
            locations=[LocationSeed(id=LOCATION, name="Acme CRM", token=TOKEN)],
            time_scale=600.0,  # HighLevel's 10-minute webhook retry takes 1 s
            rate_limit_requests=10_000,
        )
    )
    engine: SandboxEngine = sandbox_app.state.sandbox
    settings = server_settings(tmp_path, server_port)
    manager = PluginManager()
    recorder = Recorder(role="accounting")  # stands in for the books
    observer = Recorder()  # sees every event, whichever plugin it is routed to
    for name, plugin in {
        "crmconnect": crmconnect.CrmConnectPlugin,
        "recorder": recorder,
        "observer": observer,
        "producer": Producer(),
    }.items():
        manager.register(plugin, name)
    manager.check_pending()
    store = FlakyStore(SQLiteStore(settings.database_path))
    runtime = Runtime(settings, manager, store=store)  # type: ignore[arg-type]
    app = create_app(runtime=runtime, mount_sandboxes=False)
    async with (
        running_server(sandbox_app, port=sandbox_port),
        running_server(app, port=server_port),
        httpx.AsyncClient(timeout=10.0) as http,
    ):
        await runtime.create_account(ACCOUNT, "Acme", ["crmconnect", "recorder", "observer", "producer"])
        ctx = await runtime.plugin_context("crmconnect").account(ACCOUNT)
        assert ctx is not None
        await ctx.update_settings(api_base_url=sandbox_url, sandbox=True, poll_interval_seconds=0.0)
        response = await http.post(
            f"{server_url}/plugins/crmconnect/accounts/{ACCOUNT}/connect",
            json={"location_id": LOCATION, "token": TOKEN},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert response.status_code == 200, response.text
        yield Stack(server_url, sandbox_url, engine, runtime, store, observer, http)
