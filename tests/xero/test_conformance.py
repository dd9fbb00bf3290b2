"""The core's conformance suite run against the Xero plugin, connected to a Xero sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from ledgerbridge import AccountContext
from ledgerbridge.testing import serve_in_thread
from ledgerbridge.testing.conformance import plugin_test_class
from ledgerbridge_xero.plugin import XeroPlugin
from ledgerbridge_xero.sandbox import Sandbox, create_app
from ledgerbridge_xero.tokens import Connection, save_connection

from ..xero_sandbox.conftest import CLIENT_ID, CLIENT_SECRET, connect, make_config

SERVED: dict[str, object] = {}


@pytest.fixture(autouse=True)
def xero_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    app = create_app(make_config())
    with serve_in_thread(app) as url:
        app.state.sandbox.config.base_url = url
        SERVED.update(url=url, sandbox=app.state.sandbox)
        monkeypatch.setenv("LEDGERBRIDGE_XERO_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("LEDGERBRIDGE_XERO_CLIENT_SECRET", CLIENT_SECRET)
        monkeypatch.setenv("LEDGERBRIDGE_XERO_SANDBOX_URL", url)
        yield
    SERVED.clear()


async def prepare(ctx: AccountContext) -> None:
    sandbox = SERVED["sandbox"]
    assert isinstance(sandbox, Sandbox)
    # the organisation already has a customer, which the contact import publishes
    sandbox.by_name("Demo Company (US)").save_contact({"Name": "Existing Customer", "EmailAddress": "e@example.com"})
    async with httpx.AsyncClient(base_url=str(SERVED["url"])) as http:
        connected = await connect(http, sandbox)
    tokens = connected.tokens
    await save_connection(ctx, Connection(tenant_id=connected.tenant_id, tenant_name="Demo Company (US)",
                                          connection_id="c", access_token=tokens["access_token"],
                                          refresh_token=tokens["refresh_token"], access_expires_at=ctx.now() + 1800,
                                          connected_at=0.0))  # fmt: skip
    await ctx.bind_external_id(connected.tenant_id)
    await ctx.record_connection(at=0.0)  # the samples are dated now or earlier: all after the sync start


async def observe(ctx: AccountContext) -> tuple[int, ...]:
    sandbox = SERVED["sandbox"]
    assert isinstance(sandbox, Sandbox)
    books = sandbox.by_name("Demo Company (US)")
    return tuple(len(t) for t in (books.contacts, books.invoices, books.payments, books.bank_transactions))


TestXeroConformance = plugin_test_class(XeroPlugin, "xero", prepare=prepare, observe=observe)
