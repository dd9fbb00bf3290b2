"""Fixtures: the ledgerbridge server (xero plugin + a stand-in CRM producer) with the Xero sandbox mounted
in it, on one loopback port; helpers to connect through the consent page, publish CRM events and wait."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from ledgerbridge import (
    AccountContext,
    Contact,
    ContactSync,
    DeliveryContext,
    Discount,
    Event,
    FirstInvoicePaid,
    Invoice,
    InvoiceChange,
    LineItem,
    Money,
    Payment,
    TaxRate,
    hookimpl,
)
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_xero.plugin import XeroPlugin
from ledgerbridge_xero.sandbox import Sandbox
from ledgerbridge_xero.sandbox.books import Organisation
from starlette.routing import Mount

from tests import stores

ADMIN = "test-admin-token"
ACCOUNT = "acme"
US = "Demo Company (US)"


class FakeCRM:
    """Stands in for the CRM plugin: the test publishes Payment/InvoiceChange; it records what reaches the CRM
    (contact syncs from Xero, review requests from the core's policy)."""

    role = "crm"
    REVIEW_LINK = "https://reviews.example.com/acme"

    def __init__(self) -> None:
        self.contacts: list[ContactSync] = []
        self.first_paid: list[FirstInvoicePaid] = []

    @hookimpl
    async def on_contact_sync(self, ctx: DeliveryContext, sync: ContactSync) -> None:
        self.contacts.append(sync)

    @hookimpl
    async def on_first_invoice_paid(self, ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
        self.first_paid.append(event)

    @hookimpl
    def default_review_link(self, ctx: AccountContext) -> str:
        return self.REVIEW_LINK


@dataclass
class Harness:
    url: str
    runtime: Runtime
    sandbox: Sandbox
    crm: FakeCRM
    http: httpx.AsyncClient
    published: int = 0
    tenant_id: str = ""

    @property
    def xero(self) -> XeroPlugin:
        plugin = self.runtime.plugins.plugin("xero")
        assert isinstance(plugin, XeroPlugin)
        return plugin

    @property
    def books(self) -> Organisation:
        found = self.sandbox.organisation(self.tenant_id)
        assert found is not None
        return found

    async def connect(self, organisation: str = US, account: str = ACCOUNT) -> dict[str, Any]:
        """Connect to Xero as the admin, then act as the Xero user on the sandbox's consent page."""
        response = await self.http.get(f"{self.url}/plugins/xero/connect", params={"account": account},
                                       headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert response.status_code == 302, response.text
        page = await self.http.get(response.headers["location"])
        assert page.status_code == 200, page.text
        action = unescape(re.search(r"<form method='post' action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
        form = {
            unescape(n): unescape(v) for n, v in re.findall(r"type='hidden' name='([^']+)' value='([^']*)'", page.text)
        }
        form.update(tenant_id=self.sandbox.by_name(organisation).tenant_id, action="allow", user="owner@example.com")
        consent = await self.http.post(f"{self.url}{action}" if action.startswith("/") else action, data=form)
        assert consent.status_code == 302, consent.text
        done = await self.http.get(consent.headers["location"])
        if done.status_code == 303:
            result: dict[str, Any] = dict(parse_qsl(urlsplit(done.headers["location"]).query))
        else:
            assert done.status_code == 200, done.text
            result = done.json()
        self.tenant_id = result["tenant_id"]
        await self.until(self._imported)
        return result

    async def _imported(self) -> bool:
        from ledgerbridge_xero import contacts_import

        ctx = await self.runtime.plugin_context("xero").account(ACCOUNT)
        assert ctx is not None
        state = await contacts_import.import_state(ctx)
        return state is not None and state.done

    async def publish(self, event: Event, external_id: str | None = None, account: str = ACCOUNT) -> None:
        ctx = await self.runtime.plugin_context("crm").account(account)
        assert ctx is not None
        self.published += 1
        await ctx.publish(event, external_id=external_id or f"evt-{self.published}")

    async def settle(self, account: str = ACCOUNT, timeout: float = 20.0) -> dict[str, int]:
        async def idle() -> dict[str, int]:
            while True:
                counts = await self.runtime.store.count_deliveries(account)
                state = await self.runtime.store.get_plugin_state(account, "xero")
                if not counts.get("pending") or state.paused_reason:
                    return counts
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(idle(), timeout)

    async def until(self, check: Callable[[], Awaitable[bool] | bool], timeout: float = 15.0) -> None:
        async def loop() -> None:
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(loop(), timeout)

    async def webhooks_delivered(self) -> None:
        """Wait until the sandbox has sent every webhook and the server has processed the notifications."""
        await asyncio.sleep(0.1)
        await self.until(lambda: self.sandbox.dispatcher.idle)
        await self.settle()

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.request(method, f"{self.url}/sandbox/xero/control/organisations/{self.tenant_id}{path}",
                                           json=body)  # fmt: skip
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(getattr(self.books, table).values())

    async def dead(self, account: str = ACCOUNT) -> list[str]:
        return [d.last_error or "" for d in await self.runtime.store.list_deliveries(account, "dead")]

    async def activity(self, account: str = ACCOUNT) -> list[str]:
        return [entry.message for entry in await self.runtime.store.list_activity(account, 500)]


def _sandbox_engine(app: Any) -> Sandbox:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/sandbox/xero":
            engine: Sandbox = route.app.state.sandbox
            return engine
    raise AssertionError("the Xero sandbox is not mounted")


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_KEY", "SANDBOX_URL"):
        monkeypatch.delenv(f"LEDGERBRIDGE_XERO_{name}", raising=False)
    async with stack(tmp_path, free_port()) as harness:
        yield harness


@contextlib.asynccontextmanager
async def stack(data_dir: Path, port: int, *, first_run: bool = True) -> AsyncIterator[Harness]:
    """The server with the Xero sandbox mounted, on `port`, keeping its data (and the sandbox's) in `data_dir`."""
    settings = Settings(
        data_dir=data_dir, admin_token=ADMIN, public_url=f"http://127.0.0.1:{port}", port=port,
        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, poll_interval_seconds=0.05, max_attempts=8,
        lease_seconds=30.0, database_url=stores.database_url(),
    )  # fmt: skip
    manager = PluginManager()
    crm = FakeCRM()
    manager.register(XeroPlugin, "xero")
    manager.register(crm, "crm")
    manager.check_pending()
    runtime = Runtime(settings, manager)
    app = create_app(settings, runtime=runtime)
    engine = _sandbox_engine(app)
    async with running_server(app, port=port) as url, httpx.AsyncClient(timeout=30) as http:
        if first_run:
            await runtime.create_account(ACCOUNT, "Acme")
            reviews = await runtime.account_context(ACCOUNT, "reviews")
            assert reviews is not None
            await reviews.update_settings(enabled=True)
        harness = Harness(url=url, runtime=runtime, sandbox=engine, crm=crm, http=http)
        harness.xero.limits = replace(harness.xero.limits, backoff_base=0.02, backoff_cap=0.2)
        yield harness


# CRM events

USD = "USD"


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency=USD)


def now() -> datetime:
    return datetime.now(UTC)


def line(name: str, qty: str, price: str, taxes: tuple[TaxRate, ...] = ()) -> LineItem:
    return LineItem(name=name, quantity=Decimal(qty), unit_price=usd(price), taxes=taxes)


def payment(payment_id: str, *, email: str = "ada@example.com", name: str = "Ada Lovelace",
            lines: tuple[LineItem, ...] = (), discount: str = "0", tax: str = "0", total: str | None = None) -> Payment:  # fmt: skip
    subtotal = sum((li.quantity * li.unit_price.amount for li in lines), Decimal(0)) if lines else Decimal(total or "0")
    final = Decimal(total) if total is not None else subtotal - Decimal(discount) + Decimal(tax)
    return Payment(
        payment_id=payment_id, source_kind="order_form", payer=Contact(name=name, email=email), lines=lines,
        subtotal=usd(str(subtotal)), discount=usd(discount), tax=usd(tax), total=usd(str(final)), paid_at=now(),
        payment_method="card", reference=f"ch_{payment_id}",
    )  # fmt: skip


def invoice(invoice_id: str, kind: str, *, number: str | None = None, lines: tuple[LineItem, ...] = (line("Consulting", "2", "50.00"),),
            discount: str = "0", tax: str = "0", paid: str = "0", email: str = "grace@example.com",
            name: str = "Grace Hopper", created_at: datetime | None = None) -> InvoiceChange:  # fmt: skip
    subtotal = sum((li.quantity * li.unit_price.amount for li in lines), Decimal(0))
    total = subtotal - Decimal(discount) + Decimal(tax)
    statuses = {"sent": "sent", "updated": "sent", "paid": "paid", "partially_paid": "partially_paid",
                "voided": "void", "deleted": "deleted"}  # fmt: skip
    body = Invoice(
        invoice_id=invoice_id, number=number or f"INV-{invoice_id}", status=statuses[kind],  # type: ignore[arg-type]
        customer=Contact(name=name, email=email), lines=lines, subtotal=usd(str(subtotal)),
        discount_total=usd(discount), tax_total=usd(tax), total=usd(str(total)), amount_paid=usd(paid),
        amount_due=usd(str(total - Decimal(paid))), created_at=created_at or now() + timedelta(seconds=1),
        discount=Discount(kind="fixed", value=Decimal(discount)) if Decimal(discount) else None,
        issue_date=date.today(), due_date=date.today() + timedelta(days=14),
    )  # fmt: skip
    return InvoiceChange(kind=kind, invoice=body, occurred_at=now())  # type: ignore[arg-type]
