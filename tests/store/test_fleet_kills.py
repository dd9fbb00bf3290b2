"""The fleet, end to end (issue 15): PostgreSQL, three `ledgerbridge serve` replicas sharing it, the QuickBooks
sandbox and the CRM Connect sandbox each as its own process. Four accounts are connected through the product's
own connect paths, each to its own CRM location and QuickBooks company. The test is CRM Connect's webhook
sender: it signs the events the CRM made (orders paid, invoices sent, edited twice, paid) with the CRM's key and
posts them to random replicas while SIGKILLing and restarting random replicas; a webhook whose replica died is
sent again, as CRM Connect does when it gets no answer it accepts. Meanwhile every company's access token
expires twice (the QuickBooks sandbox's clock jumps an hour).

Proved from the QuickBooks sandbox's own books and counters: one sales receipt per payment (none lost, none
twice), each invoice in the state its last event describes, per company never more than 10 requests in flight
nor 500 in a (time-scaled) minute, no 429, and one token refresh per expiry.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledgerbridge.testing import free_port

from tests.quickbooks.conftest import consent_form
from tests.store.processes import Process

ADMIN = "fleet-admin-token-5b8e0c1d9a7f4e23"
# One large account and three small ones: when the small ones are idle the large one could have every worker of
# the fleet calling its company at once; only the replicas' shared limits keep it to 10 requests in flight.
ORDERS = {"acme": 250, "globex": 50, "initech": 50, "umbrella": 50}  # each OrderCreate, OrderStatusUpdate (paid)
ACCOUNTS = tuple(ORDERS)
PAYERS = 8  # per account: the n-th order and the n-th invoice are paid by payer n % PAYERS, whose customer is
# made once and then found again by e-mail, whichever replica made it
INVOICES = 15  # per account, each InvoiceSent, InvoiceUpdate, InvoiceUpdate, InvoicePaid: 4 webhooks
EDITS = ((("Design", 2, 60),), (("Design", 2, 60), ("Support", 1, 45)), (("Design", 3, 55),))  # sent, edit, edit
# the events the integration uses; the CRM's ContactCreate and InvoiceCreate, which it ignores, are not sent
SENT_KINDS = {"OrderCreate", "OrderStatusUpdate", "InvoiceSent", "InvoiceUpdate", "InvoicePaid"}
REPLICAS = 3
WORKERS = 8  # per replica: 24 workers together, more than a company's 10 requests in flight
TIME_SCALE = 6.0  # a QuickBooks minute lasts 10 s, for the sandbox and the replicas' limits alike
LATENCY = 1.8  # sandbox seconds (300 ms) per QuickBooks request, so requests of different workers overlap
EXPIRIES = 2
SENDERS = 12
KILLS = 10  # at most, one every 0.7-1.8 s while webhooks arrive and until the work is done


@dataclass
class Account:
    id: str
    location: str
    token: str
    realm: str = ""
    payments: dict[str, str] = field(default_factory=dict)  # CRM transaction id -> amount
    invoices: dict[str, str] = field(default_factory=dict)  # CRM invoice id -> its last total


@dataclass
class Fleet:
    qbo: Process
    crm: Process
    replicas: list[Process]
    http: httpx.AsyncClient
    signing_key: ed25519.Ed25519PrivateKey
    accounts: list[Account]
    rng: random.Random = field(default_factory=lambda: random.Random(15))
    acknowledged: set[str] = field(default_factory=set)
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)  # notified on each acknowledgement
    resent: int = 0
    kills: int = 0

    @property
    def public(self) -> Process:
        return self.replicas[0]  # the URL users and Intuit's redirects reach, as a load balancer's would be

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        response = await self.http.request(method, self.public.url + path, headers=headers, **kwargs)
        assert response.status_code < 400, f"{method} {path}: {response.status_code} {response.text}"
        return response

    async def crm_control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.crm.url}/_control{path}", json=body)
        assert response.status_code < 300, f"CRM {method} {path}: {response.status_code} {response.text}"
        return response.json()

    async def qbo_control(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.qbo.url}/_control{path}", json=body)
        assert response.status_code < 300, f"QBO {method} {path}: {response.status_code} {response.text}"
        return response.json()

    # -- connecting, as the admin does ---------------------------------------------------------------

    async def connect(self, account: Account) -> None:
        await self.admin("POST", "/admin/api/accounts", json={"name": account.id.title(), "id": account.id})
        settings = {"api_base_url": self.crm.url, "sandbox": True}
        await self.admin("PATCH", f"/admin/api/accounts/{account.id}/plugins/crmconnect/settings", json=settings)
        body = {"location_id": account.location, "token": account.token}
        await self.admin("POST", f"/plugins/crmconnect/accounts/{account.id}/connect", json=body)
        await self.connect_quickbooks(account)

    async def connect_quickbooks(self, account: Account) -> None:
        """QB Connect as the admin, then the QuickBooks user picks the account's company on Intuit's page."""
        start = await self.admin("GET", "/plugins/quickbooks/connect", params={"account": account.id})
        page = await self.http.get(start.headers["location"])
        assert page.status_code == 200, page.text
        action, form = consent_form(page.text)
        form.update({"email": f"owner@{account.id}.example", "realm_id": account.realm, "action": "allow"})
        consent = await self.http.post(action, data=form)
        assert consent.status_code == 302, consent.text
        done = await self.http.get(consent.headers["location"])
        assert done.status_code in (200, 303), done.text
        assert account.realm in (done.headers.get("location", "") + done.text)

    # -- what the CRM's users do -----------------------------------------------------------------------

    async def make_crm_activity(self, account: Account) -> None:
        gate = asyncio.Semaphore(4)

        async def payer(n: int) -> str:
            async with gate:
                contact = await self.crm_control("POST", "/contacts", {
                    "locationId": account.location, "firstName": f"Payer{n}", "lastName": account.id.title(),
                    "email": f"payer{n}@{account.id}.example", "phone": f"+1555000{n:04d}",
                })  # fmt: skip
            return str(contact["id"])

        payers = await asyncio.gather(*(payer(n) for n in range(PAYERS)))

        async def order(n: int) -> None:
            items = [{"name": f"Plan {n % 3}", "qty": 1, "amount": 10 + n}]
            async with gate:
                made = await self.crm_control(
                    "POST", "/payments/order-form", {"contactId": payers[n % PAYERS], "items": items}
                )
            account.payments[made["transaction"]["_id"]] = str(made["transaction"]["amount"])

        async def invoice(n: int) -> None:
            def lines(edit: int) -> list[dict[str, Any]]:
                return [{"name": name, "qty": qty, "amount": price + n} for name, qty, price in EDITS[edit]]

            async with gate:
                made = await self.crm_control(
                    "POST", "/invoices", {"contactId": payers[n % PAYERS], "items": lines(0), "send": True}
                )
                for edit in range(1, len(EDITS)):
                    await self.crm_control("PUT", f"/invoices/{made['_id']}", {"items": lines(edit)})
                paid = await self.crm_control("POST", f"/invoices/{made['_id']}/pay", {})
            account.invoices[made["_id"]] = str(paid["total"])

        await asyncio.gather(*(order(n) for n in range(ORDERS[account.id])), *(invoice(n) for n in range(INVOICES)))

    # -- CRM Connect's webhook sender ------------------------------------------------------------------

    async def webhooks(self) -> dict[str, list[bytes]]:
        """Each CRM object's events, in the order the CRM emitted them, as the raw bodies it would sign."""
        log = await self.crm_control("GET", "/webhooks/deliveries")
        deliveries = log["deliveries"] if isinstance(log, dict) else log
        objects: dict[str, list[bytes]] = {}
        for delivery in deliveries:
            if delivery["type"] in SENT_KINDS:
                body = delivery["body"]
                objects.setdefault(f"{delivery['locationId']}:{body['_id']}", []).append(json.dumps(body).encode())
        return objects

    async def send(self, raw: bytes) -> None:
        headers = {
            "content-type": "application/json",
            "x-ghl-signature": base64.b64encode(self.signing_key.sign(raw)).decode(),
        }
        for attempt in range(300):
            replica = self.rng.choice(self.replicas)
            try:
                response = await self.http.post(
                    replica.url + "/plugins/crmconnect/webhooks", content=raw, headers=headers
                )
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                answer = response.json()
                assert answer["status"] in ("stored", "duplicate"), answer
                async with self.progress:
                    self.acknowledged.add(answer["id"])
                    self.progress.notify_all()
                self.resent += attempt > 0
                return
            assert response is None or response.status_code in (429, 502, 503), response.text
            await asyncio.sleep(0.05)  # the replica died, or was not ready yet: send it again
        raise AssertionError(f"webhook never acknowledged: {raw[:200]!r}")

    async def kill_at_random(self, stop: asyncio.Event, calm: asyncio.Lock) -> None:
        while not stop.is_set() and self.kills < KILLS:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.7, 1.8))
            if stop.is_set():
                return
            async with calm:  # never while a company's token is being refreshed (see expire_tokens)
                victim = self.rng.choice(self.replicas)
                victim.kill()
                self.kills += 1
                await asyncio.sleep(self.rng.uniform(0.1, 0.4))
                victim.start()

    async def refreshes(self) -> dict[str, int]:
        observed = (await self.qbo_control("GET", "/limits"))["observed"]
        return {a.realm: observed.get(a.realm, {}).get("refreshes", 0) for a in self.accounts}

    async def expire_tokens(self, total: int, calm: asyncio.Lock) -> None:
        """At a third and two thirds of the webhooks, every access token expires (the sandbox's clock jumps an
        hour). Each company must then be refreshed once, whichever replicas' workers find it expired. No replica
        is killed from the jump until the refreshed token is stored: a replica killed between Intuit's answer
        and its write would rightly refresh again (the old refresh token is still valid)."""
        for expiry in range(1, EXPIRIES + 1):
            async with self.progress:
                await self.progress.wait_for(lambda e=expiry: len(self.acknowledged) >= total * e // (EXPIRIES + 1))
            async with calm:
                await self.qbo_control("POST", "/clock/advance", {"seconds": 3601})
                deadline = time.monotonic() + 90
                while min((await self.refreshes()).values()) < expiry:
                    assert time.monotonic() < deadline, f"expiry {expiry} not met: {await self.refreshes()}"
                    await asyncio.sleep(0.1)
                await asyncio.sleep(1.0)  # the refreshed tokens are written right after Intuit's answer

    async def settle(self, url: str, timeout: float = 180.0) -> dict[str, int]:
        """Wait until no delivery is pending (leases of killed replicas included); the states' counts."""
        started = time.monotonic()
        progress: list[tuple[float, int]] = []  # (seconds, pending) every 5 s, shown if it times out
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
            while True:
                rows = await (await db.execute("SELECT state, count(*) FROM deliveries GROUP BY state")).fetchall()
                states = {state: count for state, count in rows}
                if not states.get("pending"):
                    return states
                elapsed = time.monotonic() - started
                if not progress or elapsed - progress[-1][0] >= 5:
                    progress.append((round(elapsed), states["pending"]))
                if elapsed > timeout:
                    stuck = await (await db.execute(
                        "SELECT account_id, plugin, attempts, lease_owner, last_error FROM deliveries"
                        " WHERE state = 'pending' ORDER BY id LIMIT 10"
                    )).fetchall()  # fmt: skip
                    raise AssertionError(f"still pending: {states}; over time {progress}; the oldest {stuck}")
                await asyncio.sleep(0.25)


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LEDGERBRIDGE_")}


@contextlib.asynccontextmanager
async def running_fleet(postgres_url: str, tmp_path: Path) -> AsyncIterator[Fleet]:
    logs = tmp_path / "logs"
    logs.mkdir()
    replica_ports = [free_port() for _ in range(REPLICAS)]
    public = f"http://127.0.0.1:{replica_ports[0]}"
    qbo_port, crm_port = free_port(), free_port()
    accounts = [Account(id=a, location=f"loc{a}", token=f"pit-{a}-0123456789") for a in ACCOUNTS]
    qbo = Process(
        ["sandbox", "quickbooks", "--port", str(qbo_port), "--log-level", "warning",
         "--state-dir", str(tmp_path / "qbo"), "--time-scale", str(TIME_SCALE),
         "--client-id", "fleet-app", "--client-secret", "fleet-app-secret",
         "--redirect-uri", f"{public}/plugins/quickbooks/callback"],
        _environment(), logs / "qbo.log", qbo_port,
    )  # fmt: skip
    crm_args = ["sandbox", "crmconnect", "--port", str(crm_port), "--log-level", "warning"]
    crm_args += ["--keys-dir", str(tmp_path / "crm-keys")]
    for account in accounts:
        crm_args += ["--location", f"{account.location}:{account.token}"]
    crm = Process(crm_args, _environment(), logs / "crm.log", crm_port)
    env = _environment() | {
        "LEDGERBRIDGE_DATABASE_URL": postgres_url,
        "LEDGERBRIDGE_ADMIN_TOKEN": ADMIN,
        "LEDGERBRIDGE_PUBLIC_URL": public,
        "LEDGERBRIDGE_WORKERS": str(WORKERS),
        "LEDGERBRIDGE_LEASE_SECONDS": "2",
        "LEDGERBRIDGE_BACKOFF_BASE_SECONDS": "0.05",
        "LEDGERBRIDGE_BACKOFF_CAP_SECONDS": "0.5",
        "LEDGERBRIDGE_MAX_ATTEMPTS": "20",
        "LEDGERBRIDGE_QBO_CLIENT_ID": "fleet-app",
        "LEDGERBRIDGE_QBO_CLIENT_SECRET": "fleet-app-secret",
        "LEDGERBRIDGE_QBO_ENVIRONMENT": f"{qbo.url}/.well-known/openid_configuration",
        "LEDGERBRIDGE_QBO_API_URL": qbo.url,
        "LEDGERBRIDGE_QBO_TIME_SCALE": str(TIME_SCALE),
        "LEDGERBRIDGE_CRM_SANDBOX": "0",
    }
    data = tmp_path / "data"  # one data folder: the replicas share its secret key, as deploy.md asks
    replicas = [
        Process(["serve", "--port", str(port), "--no-sandboxes", "--log-level", "warning", "--data-dir", str(data)],
                env, logs / f"replica-{n}.log", port)
        for n, port in enumerate(replica_ports)
    ]  # fmt: skip
    processes = [qbo, crm, *replicas]
    try:
        async with httpx.AsyncClient(timeout=30.0) as http:
            qbo.start()
            crm.start()
            replicas[0].start()  # the first start makes the schema and the data folder's keys
            await qbo.ready(http, "/healthz")
            await crm.ready(http, "/_control/locations")
            await replicas[0].ready(http, "/readyz")
            for replica in replicas[1:]:
                replica.start()
            await asyncio.gather(*(r.ready(http, "/readyz") for r in replicas[1:]))
            pem = (tmp_path / "crm-keys" / "webhook-ed25519-private.pem").read_bytes()
            key = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(key, ed25519.Ed25519PrivateKey)
            yield Fleet(qbo=qbo, crm=crm, replicas=replicas, http=http, signing_key=key, accounts=accounts)
    except BaseException:
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        for process in processes:
            process.stop()


async def _timed(label: str, step: Awaitable[Any], times: dict[str, float]) -> Any:
    started = time.monotonic()
    result = await step
    times[label] = round(time.monotonic() - started, 1)
    return result


async def _each(items: list[Any], action: Callable[[Any], Awaitable[None]]) -> None:
    await asyncio.gather(*(action(item) for item in items))


@pytest.mark.slow
@pytest.mark.fleet
async def test_a_fleet_killed_at_random_books_every_payment_once_in_order_within_quickbooks_limits(
    postgres_url: str, tmp_path: Path
) -> None:
    times: dict[str, float] = {}
    async with running_fleet(postgres_url, tmp_path) as fleet:
        realms = [c["realmId"] for c in await fleet.qbo_control("GET", "/companies")]
        while len(realms) < len(ACCOUNTS):
            made = await fleet.qbo_control("POST", "/companies", {"name": f"Company {len(realms) + 1}"})
            realms.append(made["realmId"])
        for account, realm in zip(fleet.accounts, realms, strict=False):
            account.realm = realm
        await fleet.qbo_control("POST", "/faults", {"latency_seconds": LATENCY})
        for account in fleet.accounts:
            await fleet.connect(account)
        await _timed("crm activity", _each(fleet.accounts, fleet.make_crm_activity), times)
        objects = await fleet.webhooks()
        total = sum(len(events) for events in objects.values())
        assert total == sum(ORDERS.values()) * 2 + len(ACCOUNTS) * INVOICES * (len(EDITS) + 1) >= 1000

        queue = list(objects.values())
        fleet.rng.shuffle(queue)  # the accounts' objects interleaved

        async def sender() -> None:
            while queue:
                for raw in queue.pop():  # an object's next event only once its last was acknowledged
                    await fleet.send(raw)

        stop, calm = asyncio.Event(), asyncio.Lock()
        started = time.monotonic()
        chaos = asyncio.create_task(fleet.kill_at_random(stop, calm))
        expiries = asyncio.create_task(fleet.expire_tokens(total, calm))
        try:
            await asyncio.gather(*(sender() for _ in range(SENDERS)))
            await expiries
            times["sending"] = round(time.monotonic() - started, 1)
            await fleet.settle(postgres_url)  # replicas are still killed while the work is done
        finally:
            stop.set()
            await chaos
            expiries.cancel()
        times["sending and delivering"] = round(time.monotonic() - started, 1)
        await asyncio.gather(*(r.ready(fleet.http, "/readyz") for r in fleet.replicas))
        states = await _timed("settling after the last kill", fleet.settle(postgres_url), times)

        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as db:
            stored = {r[0] for r in await (await db.execute("SELECT external_id FROM events")).fetchall()}
            (rerun,) = await (await db.execute("SELECT count(*) FROM deliveries WHERE attempts > 1")).fetchone() or (0,)
        limits = (await fleet.qbo_control("GET", "/limits"))["observed"]
        books = {
            a.realm: {
                entity: (await fleet.qbo_control("GET", f"/companies/{a.realm}/{entity}"))[name]
                for entity, name in (("salesreceipt", "SalesReceipt"), ("invoice", "Invoice"), ("payment", "Payment"))
            }
            for a in fleet.accounts
        }
    print(f"times {times}; kills {fleet.kills}; webhooks resent {fleet.resent}; deliveries run again {rerun}")
    print(f"deliveries {states}; QuickBooks per company {limits}")

    assert fleet.kills >= 3 and fleet.resent >= 1 and rerun >= 1  # the kills did cut work short
    assert len(fleet.acknowledged) == total and fleet.acknowledged <= stored  # acknowledged = committed
    assert "dead" not in states, states
    for account in fleet.accounts:
        receipts = books[account.realm]["salesreceipt"]
        booked = [_marked(r, "payment") for r in receipts]
        assert sorted(booked) == sorted(account.payments)  # every payment exactly once: 0 lost, 0 duplicated
        for receipt in receipts:
            assert _amount(receipt["TotalAmt"]) == _amount(account.payments[_marked(receipt, "payment")])
        invoices = {_marked(i, "invoice"): i for i in books[account.realm]["invoice"]}
        assert len(invoices) == len(books[account.realm]["invoice"]) and invoices.keys() == account.invoices.keys()
        for crm_id, invoice in invoices.items():  # each invoice as its last event says: the last edit, paid
            assert _amount(invoice["TotalAmt"]) == _amount(account.invoices[crm_id]), invoice
            assert _amount(invoice["Balance"]) == "0.00", invoice
        paid = [
            linked["TxnId"]
            for payment in books[account.realm]["payment"]
            for line in payment.get("Line", [])
            for linked in line.get("LinkedTxn", [])
        ]
        assert sorted(paid) == sorted(i["Id"] for i in invoices.values())  # each invoice paid once
        seen = limits[account.realm]
        assert seen["peak_in_flight"] <= 10 and seen["peak_per_minute"] <= 500, seen
        assert seen["throttled"] == 0, seen
        assert seen["refreshes"] == EXPIRIES, seen  # one refresh per expiry, for the whole fleet


def _marked(document: dict[str, Any], what: str) -> str:
    found = re.search(rf"\[ledgerbridge {what} ([^\]]+)\]", document.get("PrivateNote") or "")
    assert found, document
    return found.group(1)


def _amount(value: Any) -> str:
    return f"{float(value):.2f}"


HOLDER = """
import asyncio, sys
from ledgerbridge import locks
from ledgerbridge.store import SQLiteStore
from ledgerbridge.store.postgres import PostgresStore

locks.LEASE_SECONDS = 0.5

async def main() -> None:
    where = sys.argv[1]
    store = PostgresStore(where, max_size=2) if where.startswith("postgresql://") else SQLiteStore(where)
    await store.open()
    async with locks.store_lock(store, "customer:ada@example.com", hold_seconds=120.0):
        print("held", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_replica_killed_while_holding_a_lock_holds_up_the_others_only_for_the_lease(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerbridge import locks
    from ledgerbridge.store import SQLiteStore
    from ledgerbridge.store.postgres import PostgresStore

    where = request.getfixturevalue("postgres_url") if kind == "postgresql" else str(tmp_path / "ledgerbridge.db")
    store = PostgresStore(where, max_size=2) if kind == "postgresql" else SQLiteStore(where)
    await store.open()  # makes the schema before the holder starts
    holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDER, where, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and (await holder.stdout.readline()).strip() == b"held"
        monkeypatch.setattr(locks, "LEASE_SECONDS", 0.5)
        await asyncio.sleep(1.5)  # three leases: the living holder renewed its own
        with pytest.raises(locks.LockTimeout):
            async with locks.store_lock(store, "customer:ada@example.com", wait_seconds=0.5):
                pass
        holder.send_signal(signal.SIGKILL)
        await holder.wait()
        started = time.monotonic()
        async with locks.store_lock(store, "customer:ada@example.com", wait_seconds=10.0):
            waited = time.monotonic() - started
        assert waited < 1.5  # the dead holder's lease ran out, not its 120 s hold
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await store.close()
