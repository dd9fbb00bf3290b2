"""Vendor calls per document and end-to-end throughput, measured at the vendors' side.

The real server (Runtime with the quickbooks and crmconnect plugins) runs against both sandboxes on loopback,
connected the way a user connects: QB Connect through the sandbox's consent form, its Intuit app subscribed
to webhooks (so the echoes of our own writes arrive and are counted); CRM Connect with a location token, the
CRM sandbox sending its signed webhooks. Each sandbox is wrapped in an ASGI counter, so a call is counted
where the vendor would count it, whoever made it.

Documents start where a user starts them: checkouts and invoices in the CRM sandbox (its control API).

The naive client's figures come from running a naive sequence for real (look up every referenced object
before each write, read the invoice before paying or voiding it) against a second QuickBooks company that
the same server follows through webhooks without knowing these writes as its own, so their echoes are read
back as a naive subscriber would; and, for the CRM, GET the order then GET its transactions per payment.

Usage: .venv/bin/python bench/quickbooks_sync.py [--payments 2000] [--customers 20] [--time-scale 3]

Time scale 3 (one vendor minute = 20 s) by default: at 10, the server's own CPU (on a shared 2-core machine,
16 workers over one SQLite connection) rather than Intuit's 500/min becomes what binds, and the benchmark would
measure the machine, not the calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.plugin import CrmConnectPlugin
from ledgerbridge_crmconnect.poller import TICK_ENV
from ledgerbridge_crmconnect.sandbox import LocationSeed
from ledgerbridge_crmconnect.sandbox import SandboxConfig as CrmConfig
from ledgerbridge_crmconnect.sandbox import create_app as create_crm_sandbox
from ledgerbridge_crmconnect.wire import any_decoder
from ledgerbridge_quickbooks import wire
from ledgerbridge_quickbooks.client import QuickBooksClient, quote_value
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
from ledgerbridge_quickbooks.sandbox import create_app as create_qbo_sandbox

ADMIN = "bench-admin-token-0001"
CLIENT_ID, SECRET, VERIFIER = "bench-client", "bench-secret", "bench-verifier"
LOCATION, CRM_TOKEN = "benchLocation0000001", "pit-bench-token"
ACCOUNT, NAIVE = "acme", "naive"
ITEMS = [{"name": "Coaching", "qty": 1, "amount": 100}]
QBO_PER_MINUTE, QBO_IN_FLIGHT = 500, 10  # Intuit's documented limits per company
QBO_BATCHES_PER_MINUTE = 120  # of those 500, batch requests (since 2025-10-31)
CRM_PER_INTERVAL, CRM_INTERVAL = 100, 10.0  # HighLevel's burst limit per location


@dataclass
class Counted:
    """ASGI wrapper: counts the API requests reaching a sandbox, by company or location."""

    app: Any
    kind: str  # "qbo" | "crm"
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            key = self._key(scope)
            if key:
                self.calls[key] += 1
                if self.kind == "qbo" and scope["path"].rstrip("/").endswith("/batch"):
                    self.calls["batch:" + key] += 1  # Intuit counts these in its 500 and, besides, in its 120
        await self.app(scope, receive, send)

    def _key(self, scope: Any) -> str | None:
        path: str = scope["path"]
        if self.kind == "qbo":
            return path.split("/v3/company/", 1)[1].split("/", 1)[0] if "/v3/company/" in path else None
        if path.startswith(("/_control", "/oauth", "/.well-known", "/locations/")) or path in ("/", "/favicon.ico"):
            return None
        return "crm:" + path.strip("/").split("/", 1)[0]  # crm:payments, crm:contacts, crm:invoices

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


class Stack:
    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, url: str, qbo: Counted, crm: Counted) -> None:
        self.runtime, self.http, self.url, self.qbo, self.crm = runtime, http, url, qbo, crm
        self.qbo_engine = qbo.app.state.sandbox
        self.crm_engine = crm.app.state.sandbox
        self.crm_url = ""
        self.realms: dict[str, str] = {}

    # -- connecting like a user ---------------------------------------------------------------------------
    async def connect_quickbooks(self, account: str, realm: str) -> None:
        start = await self.http.get(f"{self.url}/plugins/quickbooks/connect", params={"account": account},
                                    headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        page = await self.http.get(start.headers["location"])
        form = {unescape(k): unescape(v)
                for k, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text)}  # fmt: skip
        form.update({"email": "owner@example.com", "realm_id": realm, "action": "allow"})
        action = unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
        consent = await self.http.post(action, data=form)
        done = await self.http.get(consent.headers["location"])
        assert done.status_code in (200, 303), done.text
        self.realms[account] = realm

    async def connect_crm(self) -> None:
        ctx = await self.runtime.plugin_context("crmconnect").account(ACCOUNT)
        assert ctx is not None
        await ctx.update_settings(api_base_url=self.crm_url, sandbox=True)
        response = await self.http.post(f"{self.url}/plugins/crmconnect/accounts/{ACCOUNT}/connect",
                                        json={"location_id": LOCATION, "token": CRM_TOKEN},
                                        headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert response.status_code == 200, response.text

    async def enable_reviews(self, account: str) -> None:
        reviews = await self.runtime.account_context(account, "reviews")
        assert reviews is not None
        await reviews.update_settings(enabled=True, review_link="https://reviews.example.com/acme")

    # -- acting as the CRM user ---------------------------------------------------------------------------
    async def control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.crm_url}/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def contact(self, email: str, name: str) -> dict[str, Any]:
        first, _, last = name.partition(" ")
        body = {"locationId": LOCATION, "firstName": first, "lastName": last, "email": email, "phone": "+15555550100"}
        created: dict[str, Any] = await self.control("POST", "/contacts", body)
        return created

    async def checkout(self, contact: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = await self.control(
            "POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS}
        )
        return made

    # -- waiting --------------------------------------------------------------------------------------------
    def _qbo_quiet(self) -> bool:
        dispatcher = self.qbo_engine.dispatcher
        return all(not q.pending and q.current is None for q in dispatcher.queues.values())

    async def settle(self, timeout: float = 300.0) -> None:
        """Until both sandboxes have sent every webhook and no delivery is pending, twice in a row."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not settle")
            await self.crm_engine.webhooks.drain(timeout)
            pending = 0
            for account in self.realms:
                pending += (await self.runtime.store.count_deliveries(account)).get("pending", 0)
            quiet = quiet + 1 if pending == 0 and self._qbo_quiet() else 0
            await asyncio.sleep(0.15)
        for account in self.realms:
            dead = await self.runtime.store.list_deliveries(account, "dead")
            assert not dead, [d.last_error for d in dead]

    def crm_calls(self, what: str = "") -> int:
        return sum(n for key, n in self.crm.calls.items() if key.startswith("crm:" + what))

    async def cost(self, action: Any) -> tuple[int, int, int]:
        """(QuickBooks calls on our company, CRM payment calls, other CRM calls) once everything settled."""
        qbo, crm, other = self.qbo.calls[self.realms[ACCOUNT]], self.crm_calls("payments"), self.crm_calls()
        await action()
        await self.settle()
        payments = self.crm_calls("payments") - crm
        return self.qbo.calls[self.realms[ACCOUNT]] - qbo, payments, self.crm_calls() - other - payments

    async def quickbooks_client(self, account: str) -> QuickBooksClient:
        plugin = self.runtime.plugins.plugin("quickbooks")
        assert isinstance(plugin, QuickBooksPlugin)
        ctx = await self.runtime.plugin_context("quickbooks").account(account)
        assert ctx is not None
        return await plugin.service.client(ctx)


# -- the naive client, run for real on its own company --------------------------------------------------


class Naive:
    def __init__(self, stack: Stack, client: QuickBooksClient) -> None:
        self.stack, self.client = stack, client
        self.n = 0

    def rid(self) -> str:
        self.n += 1
        return f"naive-{self.n}-{time.monotonic_ns()}"

    async def customer(self, email: str, name: str) -> wire.Ref:
        rows = await self.client.query(
            wire.Customer, f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {quote_value(email)}"
        )
        if rows:
            return wire.Ref(value=rows[0].Id or "")
        created = await self.client.create(
            wire.Customer(DisplayName=name, PrimaryEmailAddr=wire.EmailAddress(Address=email)), self.rid()
        )
        return wire.Ref(value=created.Id or "")

    async def lines(self) -> list[wire.Line]:
        item = (await self.client.query(wire.Item, "SELECT * FROM Item WHERE Name = 'Services'"))[0]
        detail = wire.SalesItemLineDetail(ItemRef=wire.Ref(value=item.Id or ""), Qty=Decimal(1), UnitPrice=Decimal(100))
        return [wire.Line(DetailType="SalesItemLineDetail", Amount=Decimal(100), SalesItemLineDetail=detail)]

    async def receipt(self, email: str, name: str) -> None:
        customer = await self.customer(email, name)
        lines = await self.lines()
        method = (await self.client.query(wire.PaymentMethod, "SELECT * FROM PaymentMethod WHERE Name = 'Visa'"))[0]
        await self.client.create(wire.SalesReceipt(CustomerRef=customer, Line=lines, TxnDate=date.today(),
                                                   PaymentMethodRef=wire.Ref(value=method.Id or "")), self.rid())  # fmt: skip

    async def invoice_sent(self, email: str, name: str) -> str:
        customer = await self.customer(email, name)
        created = await self.client.create(wire.Invoice(CustomerRef=customer, Line=await self.lines(),
                                                        TxnDate=date.today()), self.rid())  # fmt: skip
        return created.Id or ""

    async def invoice_paid(self, invoice_id: str) -> None:
        invoice = await self.client.read(wire.Invoice, invoice_id)
        line = wire.Line(Amount=invoice.TotalAmt, LinkedTxn=[wire.LinkedTxn(TxnId=invoice_id, TxnType="Invoice")])
        await self.client.create(wire.Payment(CustomerRef=invoice.CustomerRef, TotalAmt=invoice.TotalAmt, Line=[line]),
                                 self.rid())  # fmt: skip

    async def void(self, invoice_id: str) -> None:
        invoice = await self.client.read(wire.Invoice, invoice_id)
        await self.client.void(wire.Invoice, invoice_id, invoice.SyncToken or "", self.rid())

    async def cost(self, action: Any) -> int:
        realm = self.stack.realms[NAIVE]
        before = self.stack.qbo.calls[realm]
        await action()
        await self.stack.settle()
        return self.stack.qbo.calls[realm] - before


async def naive_crm_payment(stack: Stack, order_id: str) -> int:
    """GET the order, then GET its transactions: what a client that reads everything fresh does."""
    plugin = stack.runtime.plugins.plugin("crmconnect")
    assert isinstance(plugin, CrmConnectPlugin)
    ctx = await stack.runtime.plugin_context("crmconnect").account(ACCOUNT)
    assert ctx is not None
    client, _ = await plugin.connections.client(ctx)
    before = stack.crm_calls()
    await client.get(f"/payments/orders/{order_id}", any_decoder, params={"altId": LOCATION})
    await client.get("/payments/transactions", any_decoder,
                     params={"altId": LOCATION, "altType": "location", "entityId": order_id, "limit": 100})  # fmt: skip
    return stack.crm_calls() - before


# -- the run ----------------------------------------------------------------------------------------------


async def per_document(stack: Stack) -> None:
    warm = await stack.contact("warm@example.com", "Warm Buyer")
    await stack.cost(lambda: stack.checkout(warm))  # the company's setup, item and payment method: once
    known_qbo, known_crm, _ = await stack.cost(lambda: stack.checkout(warm))
    fresh = await stack.contact("new@example.com", "New Buyer")
    new_qbo, new_crm, contact_sync = await stack.cost(lambda: stack.checkout(fresh))
    made: dict[str, Any] = {}

    async def send() -> None:
        made["invoice"] = await stack.control(
            "POST", "/invoices", {"contactId": warm["id"], "send": True, "items": ITEMS}
        )

    sent_qbo, _, _ = await stack.cost(send)
    paid_qbo, _, _ = await stack.cost(lambda: stack.control("POST", f"/invoices/{made['invoice']['_id']}/pay", {}))
    await stack.cost(send)
    void_qbo, _, _ = await stack.cost(lambda: stack.control("POST", f"/invoices/{made['invoice']['_id']}/void", {}))

    naive = Naive(stack, await stack.quickbooks_client(NAIVE))
    await naive.cost(lambda: naive.receipt("warm@example.com", "Warm Buyer"))
    naive_known = await naive.cost(lambda: naive.receipt("warm@example.com", "Warm Buyer"))
    naive_new = await naive.cost(lambda: naive.receipt("new@example.com", "New Buyer"))
    invoice: dict[str, str] = {}

    async def naive_send() -> None:
        invoice["id"] = await naive.invoice_sent("warm@example.com", "Warm Buyer")

    naive_sent = await naive.cost(naive_send)
    naive_paid = await naive.cost(lambda: naive.invoice_paid(invoice["id"]))
    await naive.cost(naive_send)
    naive_void = await naive.cost(lambda: naive.void(invoice["id"]))
    order = (await stack.checkout(warm))["order"]["_id"]
    await stack.settle()
    naive_crm = await naive_crm_payment(stack, order)

    print("Vendor API calls per document, counted at the sandboxes, webhook echoes included")
    print(f"  {'document':36} {'ledgerbridge':>12} {'naive':>6}")
    rows = [
        ("QuickBooks: receipt, known customer", known_qbo, naive_known),
        ("QuickBooks: receipt, new customer", new_qbo, naive_new),
        ("QuickBooks: invoice sent", sent_qbo, naive_sent),
        ("QuickBooks: invoice paid in the CRM", paid_qbo, naive_paid),
        ("QuickBooks: invoice voided", void_qbo, naive_void),
        ("CRM: calls per payment (one checkout)", known_crm, naive_crm),
        ("CRM: calls per payment (new contact)", new_crm, naive_crm),
        ("CRM: the new customer's contact sync", contact_sync, 0),
    ]
    for name, ours, theirs in rows:
        print(f"  {name:36} {ours:>12} {theirs:>6}")
    print("  naive: query the customer by e-mail (create it if none), the item and the payment method before each")
    print("  write; read the invoice before paying or voiding it; every webhook about its writes read back (the")
    print("  first-invoice check included); the CRM order and its transactions fetched for each payment.")


async def end_to_end(stack: Stack, payments: int, customers: int, time_scale: float) -> None:
    """`payments` checkouts over `customers` known contacts, both vendors' limits on (time-scaled).

    The CRM sandbox sends its webhooks one at a time (HighLevel sends many at once): on this machine that
    is ~20 a second, which would bind before either vendor's API limit does. So the checkouts' webhooks are
    taken in first with the books paused (the CRM side does all its work then, its calls counted), and the
    books are timed from when they resume; each side's ceiling in payments per vendor minute is its limit
    divided by its calls per payment, and the lower one binds.
    """
    contacts = [await stack.contact(f"buyer{n}@example.com", f"Buyer {n}") for n in range(customers)]
    for contact in contacts:  # known customers, as in a running business
        await stack.checkout(contact)
    await stack.settle()
    company = stack.qbo_engine.company(stack.realms[ACCOUNT])
    receipts_before = len(company.table("SalesReceipt"))
    await stack.runtime.pause(ACCOUNT, "quickbooks", "benchmark: taking the CRM's webhooks in first")
    crm_before = stack.crm_calls()
    started = time.monotonic()
    for n in range(payments):
        await stack.checkout(contacts[n % customers])
    await stack.crm_engine.webhooks.drain(3600)
    while True:  # until the payments are published, waiting for the books (polling the store)
        if (await stack.runtime.store.count_deliveries(ACCOUNT)).get("pending", 0) >= payments:
            break
        await asyncio.sleep(0.1)
    crm_side = time.monotonic() - started
    crm_calls = stack.crm_calls() - crm_before
    realm = stack.realms[ACCOUNT]
    qbo_before, batches_before = stack.qbo.calls[realm], stack.qbo.calls["batch:" + realm]
    cpu_before = time.process_time()
    started = time.monotonic()
    await stack.runtime.resume(ACCOUNT, "quickbooks")
    while True:  # polling the sandbox's books: nothing to wait on in-process
        if len(company.table("SalesReceipt")) - receipts_before >= payments:
            break
        await asyncio.sleep(0.02)
    books_side = time.monotonic() - started
    cpu_share = (time.process_time() - cpu_before) / books_side
    await stack.settle()
    qbo_calls = stack.qbo.calls[realm] - qbo_before
    qbo_batches = stack.qbo.calls["batch:" + realm] - batches_before
    refs = [r["PaymentRefNum"] for r in company.table("SalesReceipt").values()]
    receipts = len(company.table("SalesReceipt")) - receipts_before
    doubled = len(refs) - len(set(refs))
    minute = 60.0 / time_scale
    crm_ceiling = CRM_PER_INTERVAL * 60.0 / CRM_INTERVAL / max(crm_calls / payments, 1e-9)
    # QuickBooks admits 500 requests a minute, and 120 of them may be batches: the fuller of the two binds
    calls_used = qbo_calls / (books_side / minute) / QBO_PER_MINUTE
    batches_used = qbo_batches / (books_side / minute) / QBO_BATCHES_PER_MINUTE
    qbo_ceiling = QBO_PER_MINUTE / max(qbo_calls / payments, 1e-9)
    if batches_used > calls_used:
        qbo_ceiling = QBO_BATCHES_PER_MINUTE / max(qbo_batches / payments, 1e-9)
    binding, ceiling = ("QuickBooks", qbo_ceiling) if qbo_ceiling <= crm_ceiling else ("CRM", crm_ceiling)
    achieved = payments / (books_side / minute)
    taken_in = payments / (crm_side / minute)  # bounded by the CRM sandbox's one-at-a-time webhook sender too
    print()
    print(f"End to end: {payments} CRM checkouts over {customers} known customers")
    print(f"  CRM side: {crm_calls / payments:.3f} calls per payment, so at most {crm_ceiling:.0f} payments per "
          f"minute under {CRM_PER_INTERVAL} per {CRM_INTERVAL:g} s; webhooks taken in at {taken_in:.0f} per vendor "
          f"minute ({crm_side:.1f} s, the sandbox sends one at a time)")  # fmt: skip
    print(f"  QuickBooks side: {qbo_calls / payments:.3f} calls per payment ({qbo_batches} batches), using "
          f"{calls_used:.2f} of its {QBO_PER_MINUTE} calls and {batches_used:.2f} of its {QBO_BATCHES_PER_MINUTE} "
          f"batches a minute, so at most {qbo_ceiling:.0f} payments per minute; achieved {achieved:.0f} per vendor "
          f"minute ({achieved / QBO_PER_MINUTE:.2f}x the {QBO_PER_MINUTE} of one call each)")  # fmt: skip
    measured = achieved if binding == "QuickBooks" else taken_in
    print(f"  binding side: {binding}; {measured:.0f} / {ceiling:.0f} = {measured / ceiling:.2f} of its ceiling; "
          f"lost {payments - receipts}, doubled {doubled}")  # fmt: skip
    print(f"  this process (the server and both sandboxes) used {cpu_share:.2f} of a core meanwhile; near 1, its "
          f"CPU rather than a vendor binds")  # fmt: skip


async def main(payments: int, customers: int, time_scale: float, workers: int) -> None:
    server_port, qbo_port, crm_port = free_port(), free_port(), free_port()
    server_url = f"http://127.0.0.1:{server_port}"
    qbo_url, crm_url = f"http://127.0.0.1:{qbo_port}", f"http://127.0.0.1:{crm_port}"
    qbo = Counted(create_qbo_sandbox(SandboxConfig(
        base_url=qbo_url, time_scale=time_scale, requests_per_minute=QBO_PER_MINUTE, max_in_flight=QBO_IN_FLIGHT,
        apps=[AppRegistration(CLIENT_ID, SECRET, [f"{server_url}/plugins/quickbooks/callback"], VERIFIER,
                              webhook_url=f"{server_url}/plugins/quickbooks/webhooks")],
    )), "qbo")  # fmt: skip
    crm = Counted(create_crm_sandbox(CrmConfig(
        base_url=crm_url, webhook_url=f"{server_url}/plugins/crmconnect/webhooks", time_scale=time_scale,
        locations=[LocationSeed(id=LOCATION, name="Bench CRM", token=CRM_TOKEN)],
        rate_limit_requests=CRM_PER_INTERVAL, rate_limit_interval_seconds=CRM_INTERVAL,
    )), "crm")  # fmt: skip
    os.environ.update({
        "LEDGERBRIDGE_QBO_CLIENT_ID": CLIENT_ID, "LEDGERBRIDGE_QBO_CLIENT_SECRET": SECRET,
        "LEDGERBRIDGE_QBO_ENVIRONMENT": qbo_url + "/.well-known/openid_configuration",
        "LEDGERBRIDGE_QBO_VERIFIER_TOKEN": VERIFIER, "LEDGERBRIDGE_QBO_TIME_SCALE": str(time_scale),
        "LEDGERBRIDGE_QBO_REQUESTS_PER_MINUTE": str(QBO_PER_MINUTE), "LEDGERBRIDGE_QBO_MAX_IN_FLIGHT": str(QBO_IN_FLIGHT),
        "LEDGERBRIDGE_CRM_SANDBOX": "0", TICK_ENV: "1",
    })  # fmt: skip
    naive_realm = qbo.app.state.sandbox.create_company("Naive Client Co").realm_id
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), admin_token=ADMIN, public_url=server_url, port=server_port,
                            workers=workers)  # fmt: skip
        manager = PluginManager()
        manager.register(QuickBooksPlugin, "quickbooks")
        manager.register(CrmConnectPlugin, "crmconnect")
        runtime = Runtime(settings, manager)
        app = create_app(settings, runtime=runtime, mount_sandboxes=False)
        async with running_server(qbo, port=qbo_port), running_server(crm, port=crm_port), \
                running_server(app, port=server_port), httpx.AsyncClient(timeout=60) as http:  # fmt: skip
            stack = Stack(runtime, http, server_url, qbo, crm)
            stack.crm_url = crm_url
            await runtime.create_account(ACCOUNT, "Acme", ["quickbooks", "crmconnect"])
            await runtime.create_account(NAIVE, "Naive", ["quickbooks"])
            realms = [c for c in qbo.app.state.sandbox.companies if c != naive_realm]
            ours = realms[0] if realms else qbo.app.state.sandbox.create_company("Acme Books").realm_id
            await stack.connect_quickbooks(ACCOUNT, ours)
            await stack.connect_quickbooks(NAIVE, naive_realm)
            await stack.connect_crm()
            for account in (ACCOUNT, NAIVE):
                await stack.enable_reviews(account)
            await asyncio.sleep(1.0)
            await stack.settle()
            print(f"Configuration: {workers} workers, time scale {time_scale:g} (1 vendor minute = "
                  f"{60 / time_scale:.1f} s); QuickBooks {QBO_PER_MINUTE}/min and {QBO_IN_FLIGHT} in flight per "
                  f"company; CRM {CRM_PER_INTERVAL} per {CRM_INTERVAL:g} s per location; reconciliation poller at "
                  "its default interval; review requests on")  # fmt: skip
            print()
            await per_document(stack)
            if payments:
                await end_to_end(stack, payments, customers, time_scale)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2000, help="end-to-end payments (0: per-document only)")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=Settings().workers, help="the server's default unless set")
    options = parser.parse_args()
    asyncio.run(main(options.payments, options.customers, options.time_scale, options.workers))
    sys.exit(0)
