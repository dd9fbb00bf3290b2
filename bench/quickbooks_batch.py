"""A backlog of sales receipts drained into QuickBooks: one create per receipt against batch requests.

The real server (Runtime with the quickbooks plugin and a CRM-role producer that publishes payments as the
CRM plugin would) runs against the QuickBooks sandbox on loopback, connected through the sandbox's consent
form, its Intuit app subscribed to webhooks as a user's is (the echoes of our writes arrive and are handled).
The sandbox enforces Intuit's limits per company, time-scaled: 500 requests a minute, 10 in flight, 120 batch
requests a minute (each counted in the 500 as well); every request is counted at the sandbox.

Each run, twice, in the same server: `--payments` payments over `--customers` known customers are published
while the books are paused (a backlog: the server was down, or QuickBooks needed reconnecting), then the books
resume and the drain is timed until the last receipt is in the sandbox's books. First with the batcher off
(every receipt its own create: the single-call ceiling is 500 receipts per vendor minute), then on. After each
drain, every payment's receipt is counted in the sandbox: 0 lost and 0 doubled, or the run fails.

Usage: .venv/bin/python bench/quickbooks_batch.py [--payments 2000] [--customers 20] [--time-scale 3] [--runs 3]
  [--workers N]

Time scale 3 (one vendor minute = 20 s), as bench/quickbooks_sync.py, so that Intuit's limits, not this
machine's CPU, bind for the single-call drain. The server's default of 16 workers is used unless `--workers`
says otherwise; a worker waits for its receipt's create, so a batch holds at most as many receipts as there are
workers (with 8, batches alone: 8 × 120 a minute = 960 receipts a minute, 1.92× the single-call ceiling;
creates that find the queue empty but for themselves go alone between batches, within the realm's 500).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from ledgerbridge import Contact, ContactSync, DeliveryContext, LineItem, Money, Payment, hookimpl
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_quickbooks.limiter import BATCHES_PER_MINUTE
from ledgerbridge_quickbooks.plugin import QuickBooksPlugin
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig
from ledgerbridge_quickbooks.sandbox import create_app as create_qbo_sandbox

ADMIN = "bench-admin-token-0001"
CLIENT_ID, SECRET, VERIFIER = "bench-client", "bench-secret", "bench-verifier"
ACCOUNT = "acme"
QBO_PER_MINUTE, QBO_IN_FLIGHT = 500, 10  # Intuit's documented limits per company
PUBLISH_AT_ONCE = 50


class Producer:
    """The account's CRM: publishes payments as the CRM plugin does; contact syncs are taken and dropped."""

    role = "crm"

    @hookimpl
    async def on_contact_sync(self, ctx: DeliveryContext, sync: ContactSync) -> None:
        return None


@dataclass
class Counted:
    """ASGI wrapper: the Accounting API requests reaching the sandbox, by path (batch, salesreceipt, …)."""

    app: Any
    calls: Counter[str] = field(default_factory=Counter)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "/v3/company/" in scope["path"]:
            self.calls[scope["path"].split("/v3/company/", 1)[1].split("/", 1)[1].split("/")[0]] += 1
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)


def usd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="USD")


def a_payment(payment_id: str, customer: int) -> Payment:
    return Payment(
        payment_id=payment_id, source_kind="order_form",
        payer=Contact(name=f"Buyer {customer}", email=f"buyer{customer}@example.com"),
        lines=(LineItem(name="Coaching", quantity=Decimal(1), unit_price=usd("100.00")),),
        subtotal=usd("100.00"), discount=usd("0"), tax=usd("0"), total=usd("100.00"), paid_at=datetime.now(UTC),
        payment_method="card", reference=payment_id,
    )  # fmt: skip


class Bench:
    def __init__(self, runtime: Runtime, http: httpx.AsyncClient, url: str, qbo: Counted) -> None:
        self.runtime, self.http, self.url, self.qbo = runtime, http, url, qbo
        self.engine = qbo.app.state.sandbox
        self.realm = ""

    async def connect(self) -> None:
        start = await self.http.get(f"{self.url}/plugins/quickbooks/connect", params={"account": ACCOUNT},
                                    headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        page = await self.http.get(start.headers["location"])
        form = {unescape(k): unescape(v)
                for k, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text)}  # fmt: skip
        self.realm = re.findall(r"name='realm_id' value='(\d+)'", page.text)[0]
        form.update({"email": "owner@example.com", "realm_id": self.realm, "action": "allow"})
        action = unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
        consent = await self.http.post(action, data=form)
        done = await self.http.get(consent.headers["location"])
        assert done.status_code in (200, 303), done.text

    @property
    def service(self) -> Any:
        plugin = self.runtime.plugins.plugin("quickbooks")
        assert isinstance(plugin, QuickBooksPlugin)
        return plugin.service

    async def publish(self, payments: list[Payment]) -> None:
        ctx = await self.runtime.plugin_context("crm").account(ACCOUNT)
        assert ctx is not None
        for start in range(0, len(payments), PUBLISH_AT_ONCE):
            chunk = payments[start : start + PUBLISH_AT_ONCE]
            await asyncio.gather(*(ctx.publish(p, external_id=f"payment:{p.payment_id}") for p in chunk))

    def refs(self, prefix: str) -> list[str]:
        rows = self.engine.company(self.realm).table("SalesReceipt").values()
        return [r["PaymentRefNum"] for r in rows if str(r.get("PaymentRefNum", "")).startswith(prefix)]

    async def settle(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not settle")
            pending = (await self.runtime.store.count_deliveries(ACCOUNT)).get("pending", 0)
            sending = any(q.pending or q.current is not None for q in self.engine.dispatcher.queues.values())
            quiet = quiet + 1 if pending == 0 and not sending else 0
            await asyncio.sleep(0.2)
        dead = await self.runtime.store.list_deliveries(ACCOUNT, "dead")
        assert not dead, [d.last_error for d in dead]

    async def drain(self, label: str, payments: int, customers: int, *, batched: bool) -> dict[str, float]:
        """One backlog published while paused, then drained; its throughput in receipts per vendor minute."""
        self.service.batchers.enabled = batched
        prefix = f"{label}-"
        await self.runtime.pause(ACCOUNT, "quickbooks", "benchmark: a backlog builds up")
        await self.publish([a_payment(f"{prefix}{n}", n % customers) for n in range(payments)])
        before = Counter(self.qbo.calls)
        observed = self.engine.throttle.observed.get(self.realm)
        throttled = observed.throttled if observed else 0
        receipts = self.engine.company(self.realm).table("SalesReceipt")
        receipts_before = len(receipts)
        started = time.monotonic()
        await self.runtime.resume(ACCOUNT, "quickbooks")
        while True:  # polling the sandbox's books: nothing to wait on in-process
            if len(receipts) - receipts_before >= payments:  # counted once they are all in, below
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        await self.settle()
        refs = self.refs(prefix)
        lost, doubled = payments - len(set(refs)), len(refs) - len(set(refs))
        assert lost == 0 and doubled == 0, (lost, doubled)
        calls = Counter(self.qbo.calls)
        calls.subtract(before)
        observed = self.engine.throttle.observed[self.realm]
        return {"seconds": elapsed, "lost": lost, "doubled": doubled, "batches": calls["batch"],
                "creates": calls["salesreceipt"], "calls": sum(calls.values()),
                "throttled": observed.throttled - throttled}  # fmt: skip


def spread(values: list[float]) -> str:
    return f"{min(values):.0f} / {statistics.median(values):.0f} / {max(values):.0f}"


def spread2(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


async def main(payments: int, customers: int, time_scale: float, workers: int, runs: int) -> None:
    server_port, qbo_port = free_port(), free_port()
    server_url, qbo_url = f"http://127.0.0.1:{server_port}", f"http://127.0.0.1:{qbo_port}"
    qbo = Counted(create_qbo_sandbox(SandboxConfig(
        base_url=qbo_url, time_scale=time_scale, requests_per_minute=QBO_PER_MINUTE, max_in_flight=QBO_IN_FLIGHT,
        batches_per_minute=BATCHES_PER_MINUTE,
        apps=[AppRegistration(CLIENT_ID, SECRET, [f"{server_url}/plugins/quickbooks/callback"], VERIFIER,
                              webhook_url=f"{server_url}/plugins/quickbooks/webhooks")],
    )))  # fmt: skip
    os.environ.update({
        "LEDGERBRIDGE_QBO_CLIENT_ID": CLIENT_ID, "LEDGERBRIDGE_QBO_CLIENT_SECRET": SECRET,
        "LEDGERBRIDGE_QBO_ENVIRONMENT": qbo_url + "/.well-known/openid_configuration",
        "LEDGERBRIDGE_QBO_VERIFIER_TOKEN": VERIFIER, "LEDGERBRIDGE_QBO_TIME_SCALE": str(time_scale),
        "LEDGERBRIDGE_QBO_REQUESTS_PER_MINUTE": str(QBO_PER_MINUTE), "LEDGERBRIDGE_QBO_MAX_IN_FLIGHT": str(QBO_IN_FLIGHT),
    })  # fmt: skip
    minute = 60.0 / time_scale
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), admin_token=ADMIN, public_url=server_url, port=server_port,
                            workers=workers)  # fmt: skip
        manager = PluginManager()
        manager.register(QuickBooksPlugin, "quickbooks")
        manager.register(Producer(), "crm")
        manager.check_pending()
        runtime = Runtime(settings, manager)
        app = create_app(settings, runtime=runtime, mount_sandboxes=False)
        async with running_server(qbo, port=qbo_port), running_server(app, port=server_port), \
                httpx.AsyncClient(timeout=60) as http:  # fmt: skip
            bench = Bench(runtime, http, server_url, qbo)
            await runtime.create_account(ACCOUNT, "Acme", ["quickbooks", "crm"])
            await bench.connect()
            await bench.publish([a_payment(f"warm-{n}", n) for n in range(customers)])  # the customers, known
            await bench.settle()
            print(f"Configuration: {workers} workers, SQLite store, time scale {time_scale:g} (1 vendor minute = "
                  f"{minute:.1f} s); QuickBooks per company: {QBO_PER_MINUTE} requests/min, {QBO_IN_FLIGHT} in flight, "
                  f"{BATCHES_PER_MINUTE} batch requests/min (each also one of the {QBO_PER_MINUTE}), 30 items a "
                  f"batch; the sandbox's webhooks on; {payments} payments over {customers} known customers per "
                  f"drain, {runs} runs")  # fmt: skip
            print(f"Single-call ceiling: {QBO_PER_MINUTE} receipts per vendor minute (one create each)")
            print()
            single: list[float] = []
            batched: list[float] = []
            for run in range(1, runs + 1):
                for label, on, rates in (("single", False, single), ("batched", True, batched)):
                    figures = await bench.drain(f"r{run}{label[0]}", payments, customers, batched=on)
                    rate = payments / (figures["seconds"] / minute)
                    rates.append(rate)
                    print(f"run {run} {label:8}: {rate:6.0f} receipts per vendor minute ({figures['seconds']:.1f} s), "
                          f"{rate / QBO_PER_MINUTE:.2f} of the single-call ceiling; {figures['calls']:.0f} calls "
                          f"({figures['creates']:.0f} single creates, {figures['batches']:.0f} batches, "
                          f"{figures['throttled']:.0f} refused with 429); lost {figures['lost']:.0f}, doubled "
                          f"{figures['doubled']:.0f}", flush=True)  # fmt: skip
            ratios = [b / QBO_PER_MINUTE for b in batched]
            print()
            print(f"receipts per vendor minute, min / median / max: single {spread(single)}, batched {spread(batched)}")
            print(f"batched ÷ single-call ceiling ({QBO_PER_MINUTE}/min): {spread2(ratios)} (target ≥ 2)")
            print(
                f"batched ÷ single measured in the same run: {spread2([b / s for b, s in zip(batched, single, strict=True)])}"
            )
            print("every payment's receipt found once in the sandbox's books in every drain (0 lost, 0 doubled)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=Settings().workers, help="the server's default unless set")
    options = parser.parse_args()
    asyncio.run(main(options.payments, options.customers, options.time_scale, options.workers, options.runs))
