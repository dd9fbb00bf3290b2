"""`ledgerbridge demo`: the whole product on one machine, with a scripted day of business.

The server runs in this process on the embedded defaults with both vendor sandboxes mounted. The demo then
acts as each user through public HTTP only: the admin (admin API, QB Connect through the QuickBooks
sandbox's authorize form), the QuickBooks user and the CRM user (the sandboxes' control APIs). It waits for
the deliveries to settle and prints what each side holds, read back from the sandboxes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from ledgerbridge import __version__
from ledgerbridge.settings import Settings

ACCOUNT = "demo"
PLUGINS = ("quickbooks", "crmconnect")
# Names owned by the plugins, spelled here: the demo drives the server over HTTP and imports no plugin.
CRM_POLL_TICK_ENV = "LEDGERBRIDGE_CRM_POLL_TICK_SECONDS"
VENDOR_ENV = ("LEDGERBRIDGE_QBO_CLIENT_ID", "LEDGERBRIDGE_CRM_CLIENT_ID")
CRM_VERSION = "2021-07-28"
REPORT_APP = "ledgerbridge-demo-report"
REVIEW_LINK = "https://example.com/review-us"

VAT = [{"name": "VAT", "rate": 10}]
# QuickBooks customers that exist before connecting; Grace already has an open invoice from last month.
QB_CUSTOMERS = [("Ada", "Lovelace", "ada@example.com"), ("Grace", "Hopper", "grace@example.com"),
                ("Alan", "Turing", "alan@example.com")]  # fmt: skip


class DemoError(Exception):
    """A step failed: `step` says which, the message says what the server answered."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"{step}: {message}")
        self.step = step


@dataclass
class Options:
    data_dir: Path = Path("demo-data")
    port: int = 8000
    host: str = "127.0.0.1"
    keep_running: bool = True
    timeout: float = 60.0
    say: Callable[[str], None] = print
    books: str = "quickbooks"  # or "xero" (ledgerbridge_demo.demo_xero)


@dataclass
class Report:
    """What each side holds once the day has settled."""

    payments: list[dict[str, Any]] = field(default_factory=list)
    invoices: list[dict[str, Any]] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)
    qb_invoices: list[dict[str, Any]] = field(default_factory=list)  # invoices the QuickBooks user made
    pending: int = 0
    dead: int = 0
    failing: list[str] = field(default_factory=list)  # deliveries being retried after an error, or dead


# -- the data folder ---------------------------------------------------------------------------------------


def reset_data_dir(path: Path) -> Path:
    """Start from an empty folder: the old one is renamed aside, then deleted. Only that folder is touched."""
    path = path.expanduser().absolute()
    resolved = path.resolve()
    forbidden = {Path("/"), Path.home().resolve(), Path.cwd().resolve()}
    if resolved in forbidden or resolved in Path.cwd().resolve().parents:
        raise DemoError("data folder", f"refusing to wipe {resolved}: give --data-dir a folder of its own")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise DemoError("data folder", f"{path} is not a plain folder; choose another --data-dir")
    if path.exists():
        if (path / ".git").exists():
            raise DemoError("data folder", f"refusing to wipe {path}: it holds a git repository")
        aside = path.with_name(f".{path.name}.old-{os.getpid()}-{int(time.time())}")
        path.rename(aside)
        shutil.rmtree(aside)
    path.mkdir(parents=True)
    return path


# -- the server --------------------------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # so asyncio sets TCP_NODELAY
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DemoError("start the server", f"cannot listen on {host}:{port} ({exc.strerror}); try --port") from None
    return sock


@contextlib.asynccontextmanager
async def _serving(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                raise DemoError("start the server", "it stopped during start-up (see the log above)")
            await asyncio.sleep(0.02)
        yield task
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)
        sock.close()


# -- HTTP as each user -------------------------------------------------------------------------------------


class _Form(HTMLParser):
    """The first form of a page: its action and the values a browser would submit by default."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.choices: dict[str, list[str]] = {}
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if self._done:
            return
        if tag == "form" and self.action is None:
            self.action = attr.get("action", "")
        elif tag == "input" and self.action is not None and attr.get("name"):
            name = attr["name"]
            if attr.get("type") == "radio":
                self.choices.setdefault(name, []).append(attr.get("value", ""))
                if "checked" in attr:
                    self.fields[name] = attr.get("value", "")
            else:
                self.fields[name] = attr.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.action is not None:
            self._done = True


class Demo:
    plugins: tuple[str, ...] = PLUGINS
    books_name = "QuickBooks"

    def __init__(self, url: str, admin_token: str, http: httpx.AsyncClient, say: Callable[[str], None]) -> None:
        self.url = url
        self.admin_token = admin_token
        self.http = http
        self.say = say
        self.qb = f"{url}/sandbox/quickbooks"
        self.crm = f"{url}/sandbox/crmconnect"
        self.realm = ""
        self.location = ""
        self.crm_token = ""
        self.report_token = ""
        self.contacts: dict[str, str] = {}  # e-mail → CRM contact id
        self.crm_invoice: dict[str, Any] = {}
        self.qb_invoice_number = "QB-2001"
        self.expected_payments = 0
        self.step = "start"

    @contextlib.contextmanager
    def stepping(self, step: str) -> Iterator[None]:
        self.step = step
        self.say(f"- {step}")
        try:
            yield
        except DemoError:
            raise
        except httpx.HTTPError as exc:
            raise DemoError(step, f"HTTP request failed: {exc!r}") from None
        except TimeoutError:
            raise DemoError(step, "timed out") from None

    async def call(self, method: str, url: str, body: Any = None, *, expect: int | tuple[int, ...] = (200, 201),
                   **kwargs: Any) -> Any:  # fmt: skip
        response = await self.http.request(method, url, json=body, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        if response.status_code not in wanted:
            where = url.removeprefix(self.url) or "/"
            raise DemoError(self.step, f"{method} {where} answered {response.status_code}: {response.text[:500]}")
        if not response.content or "json" not in response.headers.get("content-type", ""):
            return response
        return response.json()

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return await self.call(method, f"{self.url}/admin/api{path}", body, headers=headers)

    async def qb_control(self, method: str, path: str, body: Any = None) -> Any:
        return await self.call(method, f"{self.qb}/_control{path}", body)

    async def crm_control(self, method: str, path: str, body: Any = None) -> Any:
        return await self.call(method, f"{self.crm}/_control{path}", body)

    async def crm_api(self, path: str, **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.crm_token}", "Version": CRM_VERSION}
        return await self.call("GET", f"{self.crm}{path}", params=params, headers=headers)

    async def qb_query(self, query: str) -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.report_token}", "Accept": "application/json"}
        answer = await self.call("GET", f"{self.qb}/v3/company/{self.realm}/query",
                                 params={"query": query, "minorversion": "75"}, headers=headers)  # fmt: skip
        entity = query.split()[3]
        rows: list[dict[str, Any]] = answer.get("QueryResponse", {}).get(entity, [])
        return rows

    # -- steps -----------------------------------------------------------------------------------------

    async def seed_quickbooks(self) -> None:
        with self.stepping("QuickBooks user: a company with customers already on its books"):
            company = await self.qb_control("POST", "/companies", {"name": "Demo Coaching Co", "country": "US"})
            self.realm = company["realmId"]
            ids = {}
            for given, family, email in QB_CUSTOMERS:
                created = await self.qb_control("POST", f"/companies/{self.realm}/customers", {
                    "GivenName": given, "FamilyName": family, "DisplayName": f"{given} {family}",
                    "PrimaryEmailAddr": {"Address": email},
                })  # fmt: skip
                ids[email] = created["Customer"]["Id"]
            last_month = (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
            await self.qb_control("POST", f"/companies/{self.realm}/invoices", {
                "CustomerRef": {"value": ids["grace@example.com"]}, "DocNumber": "QB-0917", "TxnDate": last_month,
                "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 75,
                          "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 75}}],
            })  # fmt: skip

    async def create_account(self) -> None:
        with self.stepping(f"admin: account {ACCOUNT!r} with both plugins"):
            await self.admin("POST", "/accounts", {"name": "Demo", "id": ACCOUNT, "plugins": list(self.plugins)})
            await self.admin("PATCH", f"/accounts/{ACCOUNT}/plugins/crmconnect/settings", {
                "poll_interval_seconds": 2.0,
            })  # fmt: skip
            await self.admin("PATCH", f"/accounts/{ACCOUNT}/plugins/reviews/settings", {
                "enabled": True, "review_link": REVIEW_LINK,
            })  # fmt: skip

    async def connect_quickbooks(self) -> None:
        with self.stepping("admin: QB Connect through the QuickBooks sandbox's sign-in page"):
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            start = await self.call("GET", f"{self.url}/plugins/quickbooks/connect", params={"account": ACCOUNT},
                                    headers=headers, expect=(302, 303))  # fmt: skip
            page = await self.call("GET", start.headers["location"], expect=200)
            form = _Form()
            form.feed(page.text)
            if not form.action or self.realm not in form.choices.get("realm_id", []):
                raise DemoError(self.step, "the sandbox's authorize page has no form offering the demo company")
            fields = {**form.fields, "email": "owner@example.com", "realm_id": self.realm, "action": "allow"}
            consent = await self.call("POST", urljoin(str(page.url), form.action), data=fields, expect=302)
            back = await self.call("GET", consent.headers["location"], expect=(200, 303))
            if back.status_code == 303:
                outcome = dict(parse_qsl(urlsplit(back.headers["location"]).query))
            else:
                outcome = back.json()
            if outcome.get("connected") not in ("1", True) or outcome.get("realm_id") != self.realm:
                raise DemoError(self.step, f"the callback did not connect the demo company: {outcome}")

    async def connect_crm(self) -> None:
        with self.stepping("CRM Connect: sandbox mode, connected to the sandbox's location"):
            locations = (await self.crm_control("GET", "/locations"))["locations"]
            card = await self.admin("GET", f"/accounts/{ACCOUNT}/plugins/crmconnect/card")
            fields = {f["label"]: f["value"] for f in card.get("fields", [])}
            for location in locations:
                if location["id"] in fields.values() and location["tokens"]:
                    self.location, self.crm_token = location["id"], location["tokens"][0]
            if not self.location:
                raise DemoError(self.step, f"the CRM Connect card names no sandbox location: {card}")
            await until(self.step, self._crm_bound, 15)

    async def _crm_bound(self) -> bool:
        account = await self.admin("GET", f"/accounts/{ACCOUNT}")
        states = {p["name"]: p for p in account["plugins"]}
        return bool(states["crmconnect"]["external_id"] == self.location)

    async def open_report_access(self) -> None:
        with self.stepping("QuickBooks: a read-only app for the demo's report"):
            await self.qb_control("POST", "/apps", {"client_id": REPORT_APP, "client_secret": "demo-report-secret"})
            tokens = await self.qb_control("POST", "/tokens", {"client_id": REPORT_APP, "realmId": self.realm})
            self.report_token = tokens["access_token"]

    async def wait_for_import(self) -> None:
        with self.stepping(f"ledgerbridge: {self.books_name} customers imported as CRM contacts"):
            emails = [email for *_, email in QB_CUSTOMERS]

            async def imported() -> bool:
                for email in emails:
                    if email not in self.contacts:
                        found = await self.crm_api("/contacts/search/duplicate", locationId=self.location,
                                                   email=email)  # fmt: skip
                        if found.get("contact"):
                            self.contacts[email] = found["contact"]["id"]
                return len(self.contacts) == len(emails)

            await until(self.step, imported, 30, every=0.5)

    async def _contact(self, first: str, last: str, email: str) -> str:
        if email not in self.contacts:
            body = {"locationId": self.location, "firstName": first, "lastName": last, "email": email}
            self.contacts[email] = (await self.crm_control("POST", "/contacts", body))["id"]
        return self.contacts[email]

    async def take_payments(self) -> None:
        with self.stepping("CRM user: payments of every kind"):
            ada = self.contacts["ada@example.com"]
            katherine = await self._contact("Katherine", "Johnson", "katherine@example.com")
            margaret = await self._contact("Margaret", "Hamilton", "margaret@example.com")
            alan = self.contacts["alan@example.com"]
            await self.crm_control("POST", "/payments/order-form", {
                "contactId": ada, "items": [{"name": "Coaching session", "qty": 1, "amount": 120, "taxes": VAT}],
            })  # fmt: skip
            started = await self.crm_control("POST", "/payments/subscriptions", {
                "contactId": katherine, "items": [{"name": "Monthly coaching plan", "qty": 1, "amount": 49}],
            })  # fmt: skip
            await self.crm_control("POST", f"/payments/subscriptions/{started['subscription']['_id']}/renew")
            await self.crm_control("POST", "/payments/membership", {
                "contactId": margaret, "items": [{"name": "Annual membership", "qty": 1, "amount": 199}],
            })  # fmt: skip
            await self.crm_control("POST", "/payments/calendar", {
                "contactId": alan, "items": [{"name": "Strategy call", "qty": 1, "amount": 80}],
            })  # fmt: skip
            self.expected_payments = 5

    async def invoice_in_crm(self) -> None:
        with self.stepping("CRM user: an invoice created, sent, edited (extra discount), then paid"):
            grace = self.contacts["grace@example.com"]
            invoice = await self.crm_control("POST", "/invoices", {
                "contactId": grace, "name": "Leadership workshop", "invoiceNumber": "CRM-1001",
                "items": [{"name": "Workshop day", "qty": 2, "amount": 150, "taxes": VAT}],
            })  # fmt: skip
            invoice_id = invoice["_id"]
            await self.crm_control("POST", f"/invoices/{invoice_id}/send")
            await self.crm_control("PUT", f"/invoices/{invoice_id}", {"discount": {"type": "fixed", "value": 30}})
            self.crm_invoice = await self.crm_control("POST", f"/invoices/{invoice_id}/pay", {"mode": "card"})

    async def invoice_in_quickbooks(self) -> None:
        with self.stepping("QuickBooks user: Alan's first invoice, then his payment"):
            customers = await self.qb_query("SELECT * FROM Customer WHERE PrimaryEmailAddr = 'alan@example.com'")
            if not customers:
                raise DemoError(self.step, "the QuickBooks company has no customer alan@example.com")
            created = await self.qb_control("POST", f"/companies/{self.realm}/invoices", {
                "CustomerRef": {"value": customers[0]["Id"]}, "DocNumber": self.qb_invoice_number,
                "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 500,
                          "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 500}}],
            })  # fmt: skip
            await self.qb_control("POST", f"/companies/{self.realm}/invoices/{created['Invoice']['Id']}/payments")

    # -- the books' side, as `run` calls it (ledgerbridge.demo_xero overrides these for Xero) -------------

    async def seed_books(self) -> None:
        await self.seed_quickbooks()

    async def connect_books(self) -> None:
        await self.connect_quickbooks()
        await self.open_report_access()

    async def invoice_in_books(self) -> None:
        await self.invoice_in_quickbooks()

    def books_link(self) -> str:
        return f"  QuickBooks: {self.qb}/companies/{self.realm}"

    def render(self, report: Report) -> str:
        return render(report)

    # -- the report ------------------------------------------------------------------------------------

    async def report(self, *, with_contacts: bool) -> Report:
        report = Report()
        receipts = await self.qb_query("SELECT * FROM SalesReceipt")
        for txn in await self.crm_payments():
            receipt = next((r for r in receipts if f"CRM payment {txn['_id']} " in r.get("PrivateNote", "")), None)
            report.payments.append({
                "kind": payment_kind(txn), "email": txn.get("contactEmail", ""), "crm_total": _money(txn["amount"]),
                "receipt_id": receipt["Id"] if receipt else None,
                "qb_total": _money(receipt["TotalAmt"]) if receipt else None,
                "qb_customer": receipt["CustomerRef"].get("name", "") if receipt else "",
            })  # fmt: skip
        if self.crm_invoice:
            crm = (await self.crm_api(f"/invoices/{self.crm_invoice['_id']}", altId=self.location,
                                      altType="location"))  # fmt: skip
            number = str(crm["invoiceNumber"])
            found = await self.qb_query(f"SELECT * FROM Invoice WHERE DocNumber = '{number}'")
            qb_invoice = found[0] if found else None
            payments = await self.qb_query("SELECT * FROM Payment")
            paid = [p for p in payments if qb_invoice and qb_invoice["Id"] in _linked_invoices(p)]
            report.invoices.append({
                "number": number, "status": crm["status"], "email": crm["contactDetails"].get("email", ""),
                "crm_total": _money(crm["total"]), "crm_paid": _money(crm["amountPaid"]),
                "discount": _money(crm.get("totalSummary", {}).get("discount", 0)),
                "invoice_id": qb_invoice["Id"] if qb_invoice else None,
                "qb_total": _money(qb_invoice["TotalAmt"]) if qb_invoice else None,
                "qb_balance": _money(qb_invoice["Balance"]) if qb_invoice else None,
                "payment_ids": [p["Id"] for p in paid],
                "qb_paid": _money(sum(Decimal(str(p["TotalAmt"])) for p in paid)),
            })  # fmt: skip
        for row in await self.qb_query(f"SELECT * FROM Invoice WHERE DocNumber = '{self.qb_invoice_number}'"):
            report.qb_invoices.append({
                "id": row["Id"], "number": row.get("DocNumber", ""), "customer": row["CustomerRef"].get("name", ""),
                "total": _money(row["TotalAmt"]), "balance": _money(row["Balance"]),
            })  # fmt: skip
        report.reviews = await self.reviews_sent()
        if with_contacts:
            seeded = {email for *_, email in QB_CUSTOMERS}
            for customer in await self.qb_query("SELECT * FROM Customer ORDERBY Id"):
                email = customer.get("PrimaryEmailAddr", {}).get("Address", "")
                found = await self.crm_api("/contacts/search/duplicate", locationId=self.location, email=email)
                report.contacts.append({
                    "customer_id": customer["Id"], "name": customer["DisplayName"], "email": email,
                    "origin": "imported" if email in seeded else "created for a CRM payment",
                    "contact_id": (found.get("contact") or {}).get("id"),
                })  # fmt: skip
        await self.count_deliveries(report)
        return report

    async def reviews_sent(self) -> list[dict[str, Any]]:
        messages = (await self.crm_control("GET", "/messages"))["messages"]
        by_id = {contact_id: email for email, contact_id in self.contacts.items()}
        return [{"contact_id": m["contactId"], "email": by_id.get(m["contactId"], "?"), "type": m["type"],
                 "subject": m.get("subject") or ""} for m in messages]  # fmt: skip

    async def crm_payments(self) -> list[dict[str, Any]]:
        """The CRM's payment transactions (not invoice payments), oldest first."""
        transactions = (await self.crm_api("/payments/transactions", altId=self.location, altType="location",
                                           limit="100"))["data"]  # fmt: skip
        return [txn for txn in sorted(transactions, key=lambda t: str(t["createdAt"]))
                if not (txn.get("entityType") == "invoice" or txn.get("entitySourceType") == "invoice")]  # fmt: skip

    async def count_deliveries(self, report: Report) -> None:
        account = await self.admin("GET", f"/accounts/{ACCOUNT}")
        report.pending = int(account["deliveries"].get("pending", 0))
        report.dead = int(account["deliveries"].get("dead", 0))
        for state in ("pending", "dead"):
            if getattr(report, state):
                for d in await self.admin("GET", f"/accounts/{ACCOUNT}/deliveries?state={state}&limit=100"):
                    if d.get("last_error") or state == "dead":
                        report.failing.append(f"{d['plugin']} {d['event_type']} {d['object_key']} ({state}, "
                                              f"{d['attempts']} attempts): {d.get('last_error') or ''}")  # fmt: skip

    def settled(self, report: Report) -> bool:
        synced = len(report.payments) >= self.expected_payments and all(p["receipt_id"] for p in report.payments)
        invoiced = all(i["invoice_id"] and i["qb_balance"] == Decimal(0) for i in report.invoices)
        # a delivery that keeps failing is reported, not waited for: only the ones still on their way hold us
        moving = report.pending - sum(1 for f in report.failing if "(pending," in f)
        return synced and invoiced and len(report.reviews) >= 1 and moving == 0

    async def settle(self, timeout: float) -> Report:
        with self.stepping(f"ledgerbridge: waiting for the deliveries to settle (at most {timeout:.0f} s)"):
            deadline = time.monotonic() + timeout
            while True:
                report = await self.report(with_contacts=False)
                if self.settled(report):
                    await asyncio.sleep(1.0)  # anything the last writes set off (webhooks back) gets its turn
                    return await self.report(with_contacts=True)
                if time.monotonic() > deadline:
                    final = await self.report(with_contacts=True)
                    self.say(self.render(final))
                    raise DemoError(self.step, f"not settled after {timeout:.0f} s: {_missing(final)}; "
                                    f"see {self.url}/accounts/{ACCOUNT}/activity")  # fmt: skip
                await asyncio.sleep(1.0)


def payment_kind(txn: dict[str, Any]) -> str:
    source, sub = txn.get("entitySourceType"), txn.get("entitySourceSubType")
    reason = (txn.get("meta") or {}).get("billingReason")
    if txn.get("entityType") == "subscription" or reason == "subscription_cycle":
        return "subscription renewal"
    if txn.get("subscriptionId") or reason == "subscription_create":
        return "subscription, first charge"
    if source == "membership":
        return "membership checkout"
    if source == "calendar":
        return f"calendar booking ({sub or 'meeting'})"
    if sub in ("one_step_order_form", "two_step_order_form"):
        return f"order form ({sub.split('_')[0]} step)"
    return f"{source}{'/' + sub if sub else ''}"


def _linked_invoices(payment: dict[str, Any]) -> set[str]:
    lines = payment.get("Line", [])
    return {
        link.get("TxnId") for line in lines for link in line.get("LinkedTxn", []) if link.get("TxnType") == "Invoice"
    }


def _money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _missing(report: Report) -> str:
    problems = [f"payment {p['kind']} has no sales receipt" for p in report.payments if not p["receipt_id"]]
    problems += [f"invoice {i['number']} not paid in QuickBooks" for i in report.invoices if i["qb_balance"] != 0]
    if not report.reviews:
        problems.append("no review request sent")
    if report.pending:
        problems.append(f"{report.pending} deliveries pending")
    problems += report.failing
    return "; ".join(problems) or "deliveries still moving"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(), line]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return ["  " + text for text in out]


def render(report: Report) -> str:
    lines = ["", "CRM payments -> QuickBooks sales receipts"]
    lines += _table(
        ["CRM event", "payer", "CRM total", "QuickBooks document", "QB total"],
        [[f"payment: {p['kind']}", p["email"], f"{p['crm_total']}",
          f"SalesReceipt {p['receipt_id']}" if p["receipt_id"] else "(not synced)",
          f"{p['qb_total']}" if p["qb_total"] is not None else "-"] for p in report.payments],
    )  # fmt: skip
    lines += ["", "CRM invoices -> QuickBooks invoices"]
    lines += _table(
        ["CRM invoice", "customer", "CRM status", "CRM total", "CRM paid", "QuickBooks document", "QB total",
         "QB balance", "QB payments"],
        [[f"invoice {i['number']}", i["email"], i["status"], f"{i['crm_total']}", f"{i['crm_paid']}",
          f"Invoice {i['invoice_id']}" if i["invoice_id"] else "(not synced)",
          f"{i['qb_total']}" if i["qb_total"] is not None else "-",
          f"{i['qb_balance']}" if i["qb_balance"] is not None else "-",
          (", ".join(f"Payment {pid}" for pid in i["payment_ids"]) + f" = {i['qb_paid']}") if i["payment_ids"] else "-"]
         for i in report.invoices],
    )  # fmt: skip
    lines += ["", "QuickBooks customers -> CRM contacts"]
    lines += _table(
        ["QB customer", "name", "e-mail", "origin", "CRM contact"],
        [[f"Customer {c['customer_id']}", c["name"], c["email"], c["origin"], c["contact_id"] or "(none)"]
         for c in report.contacts],
    )  # fmt: skip
    lines += ["", "Invoices paid in QuickBooks by the QuickBooks user"]
    lines += _table(
        ["QuickBooks document", "number", "customer", "QB total", "QB balance"],
        [[f"Invoice {i['id']}", i["number"], i["customer"], f"{i['total']}", f"{i['balance']}"]
         for i in report.qb_invoices],
    )  # fmt: skip
    lines += ["", "Review requests sent in the CRM (a customer's first QuickBooks invoice paid)"]
    lines += _table(
        ["CRM contact", "e-mail", "channel", "subject"],
        [[r["contact_id"], r["email"], r["type"], r["subject"]] for r in report.reviews],
    )
    lines += ["", f"Deliveries: {report.pending} pending, {report.dead} dead letters"]
    lines += [f"  failing: {text}" for text in report.failing]
    return "\n".join(lines)


async def until(step: str, check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise DemoError(step, f"not done after {timeout:.0f} s")
        await asyncio.sleep(every)


# -- the command -------------------------------------------------------------------------------------------


def _check_environment() -> None:
    configured = [name for name in VENDOR_ENV if os.environ.get(name)]
    if configured or os.environ.get("LEDGERBRIDGE_CRM_SANDBOX") == "0":
        names = ", ".join(configured) or "LEDGERBRIDGE_CRM_SANDBOX=0"
        raise DemoError("check the environment", f"the demo runs against the built-in sandboxes; unset {names}")


async def run(options: Options) -> int:
    from ledgerbridge.web.app import create_app
    from ledgerbridge.web.auth import TOKEN_FILE_NAME

    say = options.say
    _check_environment()
    # the CRM reconciliation poller finds subscription renewals (no webhook); make it look every second
    os.environ.setdefault(CRM_POLL_TICK_ENV, "1")
    data_dir = reset_data_dir(options.data_dir)
    settings = Settings.from_environment(data_dir=data_dir, host=options.host, port=options.port)
    settings.public_url = None
    sock = _bind(settings.host, settings.port)
    try:
        app = create_app(settings)
    except Exception as exc:
        sock.close()
        raise DemoError("build the server", str(exc)) from None
    runtime = app.state.runtime
    demo_class = _demo_class(options.books)
    missing = [name for name in demo_class.plugins if name not in runtime.plugins.names()]
    missing += [f"the {name} sandbox" for name in demo_class.plugins if name not in app.state.sandbox_urls]
    if missing:
        sock.close()
        raise DemoError("check the plugins", f"not available: {', '.join(missing)}")
    say(f"ledgerbridge {__version__} demo on {settings.base_url}  (data in {data_dir})")
    async with _serving(app, sock) as task, httpx.AsyncClient(timeout=30) as http:
        demo = demo_class(settings.base_url, app.state.admin_token, http, say)
        await demo.seed_books()
        await demo.create_account()
        await demo.connect_books()
        await demo.connect_crm()
        await demo.wait_for_import()
        await demo.take_payments()
        await demo.invoice_in_crm()
        await demo.invoice_in_books()
        report = await demo.settle(options.timeout)
        say(demo.render(report))
        say("")
        token_file = (settings.data_dir / TOKEN_FILE_NAME).resolve()
        say(f"Sign in at {settings.base_url}/signin with the admin token in {token_file}")
        say(f"  activity:   {settings.base_url}/accounts/{ACCOUNT}/activity")
        say(demo.books_link())
        say(f"  CRM:        {demo.crm}/_control/messages, {demo.crm}/_control/webhooks/deliveries")
        if options.keep_running:
            say("The server keeps running; press Ctrl-C to stop it.")
            await task
    return 0


def _demo_class(books: str) -> type[Demo]:
    if books == "xero":
        from ledgerbridge_demo.demo_xero import XeroDemo

        return XeroDemo
    return Demo


def main(options: Options) -> int:
    try:
        return asyncio.run(run(options))
    except DemoError as exc:
        options.say(f"demo failed at step '{exc.step}': {str(exc).removeprefix(exc.step + ': ')}")
        return 1
