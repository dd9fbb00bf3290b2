"""Fixtures: the ledgerbridge server (quickbooks plugin + a fake CRM producer) with the QuickBooks sandbox
mounted in it, all on one loopback port; helpers to walk OAuth, publish CRM events and wait."""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any, TypeVar
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
    Refund,
    TaxRate,
    hookimpl,
)
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import Sandbox
from ledgerbridge_quickbooks.service import Service
from starlette.routing import Mount

from tests import stores

ADMIN = "test-admin-token"
ACCOUNT = "acme"


class FakeCRM:
    """Stands in for the CRM plugin: publishes Payment/InvoiceChange, records what QuickBooks publishes."""

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
    realm: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> Service:
        plugin = self.runtime.plugins.plugin("quickbooks")
        assert isinstance(plugin, QuickBooksPlugin)
        return plugin.service

    async def connect(
        self, account: str = ACCOUNT, *, realm: str | None = None, wait_for_import: bool = True
    ) -> dict[str, Any]:
        """QB Connect as the admin, then act as the user on the sandbox's HTML authorize form; then wait
        until the contact import has listed every customer, unless told not to."""
        response = await self.http.get(
            f"{self.url}/plugins/quickbooks/connect", params={"account": account},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )  # fmt: skip
        assert response.status_code == 302, response.text
        page = await self.http.get(response.headers["location"])
        assert page.status_code == 200, page.text
        action, form = consent_form(page.text)
        realms = re.findall(r"name='realm_id' value='(\d+)'", page.text)
        form.update({"email": "owner@example.com", "realm_id": realm or realms[0], "action": "allow"})
        consent = await self.http.post(action, data=form)
        assert consent.status_code == 302, consent.text
        done = await self.http.get(consent.headers["location"])
        if done.status_code == 303:  # back to the web UI's integrations page, the outcome in the query
            result: dict[str, Any] = dict(parse_qsl(urlsplit(done.headers["location"]).query))
        else:
            assert done.status_code == 200, done.text
            result = done.json()
        self.realm = result["realm_id"]
        if wait_for_import:
            await self.until(self.imported)
        return result

    async def imported(self) -> bool:
        from ledgerbridge_quickbooks import contacts_import

        ctx = await self.runtime.plugin_context("quickbooks").account(ACCOUNT)
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
                state = await self.runtime.store.get_plugin_state(account, "quickbooks")
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
        dispatcher = self.sandbox.dispatcher

        def drained() -> bool:
            queues = dispatcher.queues.values()
            return all(not q.pending and q.current is None for q in queues) and all(
                d.delivered for d in dispatcher.history
            )

        await asyncio.sleep(0.1)
        await self.until(drained)
        await self.settle()

    def rows(self, entity: str) -> list[dict[str, Any]]:
        return list(self.sandbox.company(self.realm).table(entity).values())

    async def dead(self, account: str = ACCOUNT) -> list[str]:
        return [d.last_error or "" for d in await self.runtime.store.list_deliveries(account, "dead")]

    async def activity(self, account: str = ACCOUNT) -> list[str]:
        return [entry.message for entry in await self.runtime.store.list_activity(account, 500)]


def _sandbox_mount(app: Any) -> Mount:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/sandbox/quickbooks":
            return route
    raise AssertionError("the QuickBooks sandbox is not mounted")


def _sandbox_engine(app: Any) -> Sandbox:
    engine: Sandbox = _sandbox_mount(app).app.state.sandbox
    return engine


W = TypeVar("W")


def wrap_sandbox(harness: Harness, wrapper: Callable[[Any], W]) -> W:
    """Put `wrapper` (an ASGI app around the mounted QuickBooks sandbox) in the sandbox's place; returns it."""
    mount = _sandbox_mount(harness.extra["app"])
    wrapped = wrapper(mount.app)
    mount.app = wrapped
    return wrapped


def consent_form(page: str) -> tuple[str, dict[str, str]]:
    """The sandbox's Intuit consent page: where its form posts, and its hidden fields."""
    action = unescape(re.search(r"<form method='post' action='([^']+)'", page).group(1))  # type: ignore[union-attr]
    fields = {
        unescape(n): unescape(v) for n, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page)
    }
    return action, fields


@pytest.fixture
async def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL"):
        monkeypatch.delenv(f"LEDGERBRIDGE_QBO_{name}", raising=False)
    port = free_port()
    settings = Settings(
        data_dir=tmp_path, admin_token=ADMIN, public_url=f"http://127.0.0.1:{port}", port=port,
        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, poll_interval_seconds=0.05, max_attempts=8,
        lease_seconds=30.0, database_url=stores.database_url(),
    )  # fmt: skip
    manager = PluginManager()
    crm = FakeCRM()
    manager.register(QuickBooksPlugin, "quickbooks")
    manager.register(crm, "crm")
    manager.check_pending()
    runtime = Runtime(settings, manager)
    app = create_app(settings, runtime=runtime)
    engine = _sandbox_engine(app)
    async with running_server(app, port=port) as url, httpx.AsyncClient(timeout=30) as http:
        await runtime.create_account(ACCOUNT, "Acme")
        reviews = await runtime.account_context(ACCOUNT, "reviews")
        assert reviews is not None
        await reviews.update_settings(enabled=True)
        harness = Harness(url=url, runtime=runtime, sandbox=engine, crm=crm, http=http, extra={"app": app})
        harness.service.limits = _fast(harness.service)
        yield harness


def _fast(service: Service) -> Any:
    from dataclasses import replace

    # quick client retries so fault tests finish in seconds
    return replace(service.limits, backoff_base=0.02, backoff_cap=0.2)


# CRM events

USD = "USD"


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency=USD)


def now() -> datetime:
    return datetime.now(UTC)


def line(name: str, qty: str, price: str, taxes: tuple[TaxRate, ...] = ()) -> LineItem:
    return LineItem(name=name, quantity=Decimal(qty), unit_price=usd(price), taxes=taxes)


def payment(
    payment_id: str,
    *,
    email: str = "ada@example.com",
    name: str = "Ada Lovelace",
    lines: tuple[LineItem, ...] = (),
    discount: str = "0",
    tax: str = "0",
    total: str | None = None,
    refunds: tuple[Refund, ...] = (),
    method: str | None = "card",
) -> Payment:
    subtotal = sum((li.quantity * li.unit_price.amount for li in lines), Decimal(0)) if lines else Decimal(total or "0")
    final = Decimal(total) if total is not None else subtotal - Decimal(discount) + Decimal(tax)
    return Payment(
        payment_id=payment_id, source_kind="order_form", payer=Contact(name=name, email=email), lines=lines,
        subtotal=usd(str(subtotal)), discount=usd(discount), tax=usd(tax), total=usd(str(final)), paid_at=now(),
        payment_method=method, reference=f"ch_{payment_id}", refunds=refunds,
    )  # fmt: skip


def invoice(
    invoice_id: str,
    kind: str,
    *,
    number: str | None = None,
    status: str | None = None,
    lines: tuple[LineItem, ...] = (line("Consulting", "2", "50.00"),),
    discount: str = "0",
    tax: str = "0",
    paid: str = "0",
    email: str = "grace@example.com",
    name: str = "Grace Hopper",
    created_at: datetime | None = None,
) -> InvoiceChange:
    subtotal = sum((li.quantity * li.unit_price.amount for li in lines), Decimal(0))
    total = subtotal - Decimal(discount) + Decimal(tax)
    statuses = {"sent": "sent", "updated": "sent", "paid": "paid", "partially_paid": "partially_paid",
                "voided": "void", "deleted": "deleted"}  # fmt: skip
    body = Invoice(
        invoice_id=invoice_id, number=number or f"INV-{invoice_id}", status=status or statuses[kind],  # type: ignore[arg-type]
        customer=Contact(name=name, email=email), lines=lines, subtotal=usd(str(subtotal)),
        discount_total=usd(discount), tax_total=usd(tax), total=usd(str(total)), amount_paid=usd(paid),
        amount_due=usd(str(total - Decimal(paid))), created_at=created_at or now(),
        discount=Discount(kind="fixed", value=Decimal(discount)) if Decimal(discount) else None,
        issue_date=date.today(), due_date=date.today(),
    )  # fmt: skip
    return InvoiceChange(kind=kind, invoice=body, occurred_at=now())  # type: ignore[arg-type]
