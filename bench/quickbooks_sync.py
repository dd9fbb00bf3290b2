"""QuickBooks sync benchmark: API calls per document, and sustained documents per minute under Intuit's limits.

Runs the ledgerbridge server (quickbooks plugin + a fake CRM producer) and the QuickBooks sandbox as a separate
app on loopback, configured like a real Intuit app (LEDGERBRIDGE_QBO_* variables), connects through the OAuth
form, then publishes CRM events. Usage: .venv/bin/python bench/quickbooks_sync.py [--docs 2000] [--time-scale 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import msgspec
from ledgerbridge import Contact, Invoice, InvoiceChange, LineItem, Money, Payment
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
from ledgerbridge_quickbooks.sandbox import create_app as create_sandbox

ADMIN = "bench-admin-token-0001"
CLIENT_ID, SECRET = "bench-client", "bench-secret"


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def payment(n: int, email: str) -> Payment:
    item = LineItem(name="Membership", quantity=Decimal(1), unit_price=usd("29.00"))
    return Payment(
        payment_id=f"pay-{n}", source_kind="subscription", payer=Contact(name=email.split("@")[0], email=email),
        lines=(item,), subtotal=usd("29.00"), discount=usd("0"), tax=usd("2.32"), total=usd("31.32"),
        paid_at=datetime.now(UTC), payment_method="card", reference=f"ch_{n}",
    )  # fmt: skip


def invoice_change(kind: str, *, qty: str = "2", paid: str = "0", status: str = "sent") -> InvoiceChange:
    lines = (LineItem(name="Consulting", quantity=Decimal(qty), unit_price=usd("100.00")),)
    total = Decimal(qty) * 100
    body = Invoice(
        invoice_id="inv-1", number="B-1", status=status, customer=Contact(name="Known", email="known@example.com"),  # type: ignore[arg-type]
        lines=lines, subtotal=usd(str(total)), discount_total=usd("0"), tax_total=usd("0"), total=usd(str(total)),
        amount_paid=usd(paid), amount_due=usd(str(total - Decimal(paid))), created_at=datetime.now(UTC),
        issue_date=date.today(),
    )  # fmt: skip
    return InvoiceChange(kind=kind, invoice=body, occurred_at=datetime.now(UTC))  # type: ignore[arg-type]


class Bench:
    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, url: str, sandbox: Any) -> None:
        self.runtime, self.http, self.url, self.sandbox = runtime, http, url, sandbox
        self.seq = 0

    @property
    def calls(self) -> int:
        plugin = self.runtime.plugins.plugin("quickbooks")
        assert isinstance(plugin, QuickBooksPlugin)
        return sum(client.calls for client in plugin.service.clients)

    async def connect(self) -> str:
        response = await self.http.get(f"{self.url}/plugins/quickbooks/connect", params={"account": "acme"},
                                       headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        page = await self.http.get(response.headers["location"])
        form = dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text))
        form = {unescape(k): unescape(v) for k, v in form.items()}
        form.update({"email": "owner@example.com", "realm_id": re.findall(r"value='(\d{10,})'", page.text)[0],
                     "action": "allow"})  # fmt: skip
        action = unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
        consent = await self.http.post(action, data=form)
        done = await self.http.get(consent.headers["location"])
        assert done.status_code in (200, 303), done.text
        found = dict(parse_qsl(urlsplit(done.headers["location"]).query)) if done.status_code == 303 else done.json()
        realm: str = found["realm_id"]
        return realm

    async def publish(self, event: Any) -> None:
        ctx = await self.runtime.plugin_context("crm").account("acme")
        assert ctx is not None
        self.seq += 1
        await ctx.publish(event, external_id=f"bench-{self.seq}")

    async def settle(self) -> None:
        while True:
            if not (await self.runtime.store.count_deliveries("acme")).get("pending"):
                break
            await asyncio.sleep(0.01)  # polling the store: nothing to wait on in-process
        dead = await self.runtime.store.list_deliveries("acme", "dead")
        assert not dead, [d.last_error for d in dead]

    async def cost(self, event: Any) -> int:
        before = self.calls
        await self.publish(event)
        await self.settle()
        return self.calls - before


async def main(docs: int, time_scale: float, workers: int) -> None:
    server_port, sandbox_port = free_port(), free_port()
    server_url, sandbox_url = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{sandbox_port}"
    sandbox_app = create_sandbox(SandboxConfig(
        base_url=sandbox_url, time_scale=time_scale,
        apps=[AppRegistration(CLIENT_ID, SECRET, [f"{server_url}/plugins/quickbooks/callback"], "bench-verifier")],
    ))  # fmt: skip
    os.environ.update({
        "LEDGERBRIDGE_QBO_CLIENT_ID": CLIENT_ID, "LEDGERBRIDGE_QBO_CLIENT_SECRET": SECRET,
        "LEDGERBRIDGE_QBO_ENVIRONMENT": sandbox_url + "/.well-known/openid_configuration",
        "LEDGERBRIDGE_QBO_VERIFIER_TOKEN": "bench-verifier", "LEDGERBRIDGE_QBO_TIME_SCALE": str(time_scale),
        "LEDGERBRIDGE_QBO_REQUESTS_PER_MINUTE": "500", "LEDGERBRIDGE_QBO_MAX_IN_FLIGHT": "10",
    })  # fmt: skip
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), admin_token=ADMIN, public_url=server_url, port=server_port,
                            workers=workers, poll_interval_seconds=0.02, backoff_base_seconds=0.05,
                            backoff_cap_seconds=1.0)  # fmt: skip
        manager = PluginManager()
        manager.register(QuickBooksPlugin, "quickbooks")
        manager.register(type("FakeCRM", (), {})(), "crm")
        runtime = Runtime(settings, manager)
        app = create_app(settings, runtime=runtime, mount_sandboxes=False)
        async with running_server(sandbox_app, port=sandbox_port), running_server(app, port=server_port), \
                httpx.AsyncClient(timeout=30) as http:  # fmt: skip
            await runtime.create_account("acme", "Acme")
            bench = Bench(runtime, http, server_url, sandbox_app.state.sandbox)
            realm = await bench.connect()
            await asyncio.sleep(0.5)
            await bench.settle()
            await bench.cost(payment(0, "warmup@example.com"))  # company setup, item and payment method
            warm = payment(3, "known@example.com")
            consulting = LineItem(name="Consulting", quantity=Decimal(1), unit_price=usd("31.32"))
            await bench.cost(msgspec.structs.replace(warm, lines=(consulting,)))
            rows = [
                ("sales receipt, new customer", await bench.cost(payment(1, "new@example.com")), 4),
                ("sales receipt, known customer", await bench.cost(payment(2, "new@example.com")), 3),
                ("invoice create (known customer)", await bench.cost(invoice_change("sent")), 3),
                ("invoice update", await bench.cost(invoice_change("updated", qty="3")), 2),
                ("invoice payment", await bench.cost(invoice_change("paid", qty="3", paid="300", status="paid")), 2),
                ("invoice void", await bench.cost(invoice_change("voided", qty="3", paid="300", status="void")), 2),
            ]
            print("QuickBooks API calls per document (after the first use of a company, item and payment method)")
            print(f"  {'document':34} {'ledgerbridge':>12} {'naive':>6}")
            for name, ours, naive in rows:
                print(f"  {name:34} {ours:>12} {naive:>6}")
            print("  naive = look up every referenced object (customer, item, invoice) before each write")

            # sustained throughput: known customers, one call per receipt; Intuit's limits, time-scaled
            customers = [f"buyer{n}@example.com" for n in range(20)]
            for n, email in enumerate(customers):
                await bench.publish(payment(10_000 + n, email))
            await bench.settle()
            company = bench.sandbox.company(realm)
            base_receipts = len(company.table("SalesReceipt"))
            # queue every document first (deliveries paused), so the producer is not what is measured
            await runtime.pause("acme", "quickbooks", "benchmark: queueing")
            for n in range(docs):
                await bench.publish(payment(20_000 + n, customers[n % len(customers)]))
            calls_before = bench.calls
            marks: dict[int, float] = {}
            started = time.monotonic()
            await runtime.resume("acme", "quickbooks")
            while len(company.table("SalesReceipt")) - base_receipts < docs:
                done = len(company.table("SalesReceipt")) - base_receipts
                marks.setdefault(done // 100 * 100, time.monotonic())
                await asyncio.sleep(0.005)
            finished = time.monotonic()
            await bench.settle()
            receipts = [r for r in company.table("SalesReceipt").values() if int(r["PaymentRefNum"][3:]) >= 20_000]
            refs = [r["PaymentRefNum"] for r in receipts]
            lost, duplicated = docs - len(set(refs)), len(refs) - len(set(refs))
            steady_from = min((k for k in marks if k >= 500), default=0)
            steady_seconds = finished - marks.get(steady_from, started)
            scaled_minute = 60.0 / time_scale
            per_minute = (docs - steady_from) / steady_seconds * scaled_minute
            overall = docs / (finished - started) * scaled_minute
            ceiling = 500.0  # one call per document at 500 requests per minute
            print()
            print(f"Sustained throughput: {docs} sales receipts, time scale {time_scale:g} (1 QBO minute = "
                  f"{scaled_minute:.1f} s), limits 500/min and 10 in flight, {workers} workers")  # fmt: skip
            print(f"  steady state (after the first minute's burst): {per_minute:.0f} documents per QBO minute "
                  f"= {per_minute / ceiling:.2f} of the 500/min ceiling")  # fmt: skip
            print(f"  whole run including the initial burst: {overall:.0f} per QBO minute")
            print(
                f"  API calls: {bench.calls - calls_before} for {docs} documents; lost {lost}, duplicated {duplicated}"
            )
            print(f"  429 answers seen by the client: {bench.calls - calls_before - docs}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=16)
    options = parser.parse_args()
    asyncio.run(main(options.docs, options.time_scale, options.workers))
    sys.exit(0)
