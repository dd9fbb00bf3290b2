"""Three replicas with the QuickBooks plugin on one PostgreSQL database, against one QuickBooks sandbox that counts
what it sees per company: together the replicas keep to the company's limits (10 requests in flight, 500 in a
minute, time-scaled) and refresh its access token once per expiry, however many workers find it expired."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import Sandbox

from tests.quickbooks.conftest import ACCOUNT, ADMIN, FakeCRM, Harness, _sandbox_engine, payment

TIME_SCALE = 4.0  # a sandbox minute lasts 15 s, for the sandbox and the plugin's limits alike
LATENCY = 0.8  # sandbox seconds (200 ms) per request, so requests of different workers overlap
PAYMENTS = 180  # each a new payer: a customer lookup, a customer and a sales receipt, ~540 requests
EXPIRIES = 2


@dataclass
class Fleet:
    harness: Harness
    sandbox: Sandbox
    replicas: list[Runtime]

    async def run(self) -> None:
        """Connect the company, then publish payments while its access token expires EXPIRIES times."""
        await self.harness.connect()
        expired = 0
        for number in range(PAYMENTS):
            if number and number % (PAYMENTS // (EXPIRIES + 1)) == 0:
                self.sandbox.advance_clock(3601)  # every access token the replicas hold is now expired
                expired += 1
            await self.harness.publish(
                payment(f"p-{number}", email=f"payer{number}@example.com", name=f"Payer {number}", total="10.00")
            )
            if expired and number % (PAYMENTS // (EXPIRIES + 1)) == 0:
                # the next expiry only after this one was met: two expiries before any refresh need only one
                await self.harness.until(lambda met=expired: self.refreshes() >= met, timeout=60)
        await self.harness.settle(timeout=180)

    def refreshes(self) -> int:
        observed = self.sandbox.throttle.observed.get(self.harness.realm)
        return observed.refreshes if observed is not None else 0


def settings(tmp_path: Path, port: int, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path, admin_token=ADMIN, public_url=f"http://127.0.0.1:{port}", port=port,
        database_url=database_url, workers=8, backoff_base_seconds=0.05, backoff_cap_seconds=0.5,
        poll_interval_seconds=0.05, max_attempts=20, lease_seconds=30.0,
    )  # fmt: skip


def manager(crm: FakeCRM) -> PluginManager:
    plugins = PluginManager()
    plugins.register(QuickBooksPlugin, "quickbooks")
    plugins.register(crm, "crm")
    plugins.check_pending()
    return plugins


@pytest.fixture
async def fleet(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Fleet]:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL"):
        monkeypatch.delenv(f"LEDGERBRIDGE_QBO_{name}", raising=False)
    monkeypatch.setenv("LEDGERBRIDGE_QBO_TIME_SCALE", str(TIME_SCALE))
    port = free_port()
    crm = FakeCRM()
    primary = Runtime(settings(tmp_path, port, postgres_url), manager(crm))
    app = create_app(primary.settings, runtime=primary)  # serves the sandbox and the OAuth callback
    sandbox = _sandbox_engine(app)
    sandbox.config.time_scale = sandbox.throttle.time_scale = TIME_SCALE
    sandbox.faults.latency = LATENCY
    async with running_server(app, port=port) as url, httpx.AsyncClient(timeout=30) as http:
        await primary.create_account(ACCOUNT, "Acme")
        others: list[Runtime] = []
        try:
            for _ in range(2):  # replicas on the same database and data folder, their own plugin instances
                replica = Runtime(settings(tmp_path, free_port(), postgres_url), manager(FakeCRM()))
                replica.sandbox_urls.update(primary.sandbox_urls)
                await replica.start()
                others.append(replica)
            harness = Harness(url=url, runtime=primary, sandbox=sandbox, crm=crm, http=http)
            yield Fleet(harness, sandbox, [primary, *others])
        finally:
            for replica in others:
                await replica.stop()


@pytest.mark.slow
async def test_three_replicas_book_every_payment_once_and_refresh_the_token_once_per_expiry(fleet: Fleet) -> None:
    await fleet.run()
    assert await fleet.harness.dead() == []
    receipts = fleet.harness.rows("SalesReceipt")
    assert len(receipts) == PAYMENTS  # none lost, none booked twice
    assert fleet.sandbox.throttle.observed[fleet.harness.realm].refreshes == EXPIRIES


@pytest.mark.slow
async def test_three_replicas_together_keep_to_the_company_s_limits(fleet: Fleet) -> None:
    await fleet.run()
    seen = fleet.sandbox.throttle.observed[fleet.harness.realm]
    assert seen.peak_per_minute > 0  # the sandbox did count
    assert seen.peak_in_flight <= 10 and seen.peak_per_minute <= 500, seen.summary()
    assert seen.throttled == 0, seen.summary()
