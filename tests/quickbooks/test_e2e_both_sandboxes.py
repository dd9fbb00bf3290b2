"""Refunds end to end through both sandboxes: the CRM user refunds, QuickBooks shows each refund's money.

The real server with both built-in plugins and both sandboxes mounted, connected the way a user connects
(QB Connect through the sandbox's sign-in form; CRM Connect in sandbox mode binds itself), then the CRM
user takes money and refunds it through the CRM sandbox's control API.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.poller import TICK_ENV
from ledgerbridge_crmconnect.sandbox import SandboxEngine
from ledgerbridge_quickbooks.sandbox import Sandbox
from starlette.routing import Mount

from tests import stores

ADMIN = "both-sandboxes-admin"
ACCOUNT = "books"


@dataclass
class Books:
    url: str
    http: httpx.AsyncClient
    quickbooks: Sandbox
    crm_engine: SandboxEngine
    realm: str = ""
    location: str = ""

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.url}/admin/api{path}", json=body,
                                           headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert response.status_code < 300, response.text
        return response.json()

    async def crm(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.url}/sandbox/crmconnect/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    def rows(self, entity: str) -> list[dict[str, Any]]:
        return list(self.quickbooks.company(self.realm).table(entity).values())

    async def until(self, what: str, check: Callable[[], Awaitable[bool] | bool], timeout: float = 30.0) -> None:
        async def loop() -> None:
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.1)

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            dead = await self.admin("GET", f"/accounts/{ACCOUNT}/deliveries?state=dead")
            raise AssertionError(f"{what}: not seen in {timeout} s; dead letters: {dead}") from None

    async def connect_quickbooks(self) -> None:
        start = await self.http.get(f"{self.url}/plugins/quickbooks/connect", params={"account": ACCOUNT},
                                    headers={"Authorization": f"Bearer {ADMIN}"})  # fmt: skip
        assert start.status_code in (302, 303), start.text
        page = await self.http.get(start.headers["location"])
        action = unescape(re.search(r"<form method='post' action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
        form = {unescape(n): unescape(v)
                for n, v in re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'", page.text)}  # fmt: skip
        self.realm = re.findall(r"name='realm_id' value='(\d+)'", page.text)[0]
        form.update({"email": "owner@example.com", "realm_id": self.realm, "action": "allow"})
        consent = await self.http.post(action, data=form)
        assert consent.status_code == 302, consent.text
        back = await self.http.get(consent.headers["location"])
        assert back.status_code in (200, 303), back.text

    async def crm_bound(self) -> bool:
        account = await self.admin("GET", f"/accounts/{ACCOUNT}")
        states = {p["name"]: p for p in account["plugins"]}
        self.location = states["crmconnect"]["external_id"] or ""
        return bool(self.location)


def _mounted(app: Any, name: str) -> Any:
    for route in app.routes:
        if isinstance(route, Mount) and route.path == f"/sandbox/{name}":
            return route.app.state.sandbox
    raise AssertionError(f"the {name} sandbox is not mounted")


@pytest.fixture
async def books(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Books]:
    for name in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL"):
        monkeypatch.delenv(f"LEDGERBRIDGE_QBO_{name}", raising=False)
    monkeypatch.delenv("LEDGERBRIDGE_CRM_CLIENT_ID", raising=False)
    monkeypatch.setenv(TICK_ENV, "0.1")
    port = free_port()
    settings = Settings(
        data_dir=tmp_path, admin_token=ADMIN, public_url=f"http://127.0.0.1:{port}", port=port,
        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, poll_interval_seconds=0.05, max_attempts=8,
        database_url=stores.database_url(),
    )  # fmt: skip
    app = create_app(settings)
    async with running_server(app, port=port) as url, httpx.AsyncClient(timeout=30) as http:
        books = Books(url, http, _mounted(app, "quickbooks"), _mounted(app, "crmconnect"))
        await books.admin("POST", "/accounts", {"name": "Books", "id": ACCOUNT,
                                                "plugins": ["quickbooks", "crmconnect"]})  # fmt: skip
        await books.admin("PATCH", f"/accounts/{ACCOUNT}/plugins/crmconnect/settings",
                          {"poll_interval_seconds": 0.2, "refund_sweep_hours": 0.0})  # fmt: skip
        await books.connect_quickbooks()
        await books.until("CRM Connect bound to the sandbox location", books.crm_bound)
        yield books


def _totals(rows: list[dict[str, Any]]) -> list[Decimal]:
    return [Decimal(str(r["TotalAmt"])) for r in sorted(rows, key=lambda r: int(r["Id"]))]


async def test_a_crm_payment_refunded_30_then_20_shows_refunds_of_30_and_20_in_quickbooks(books: Books) -> None:
    contact = await books.crm("POST", "/contacts", {"locationId": books.location, "firstName": "Ada",
                                                     "lastName": "Lovelace", "email": "ada@example.com"})  # fmt: skip
    paid = await books.crm("POST", "/payments/order-form", {"contactId": contact["id"],
                                                            "items": [{"name": "Coaching", "qty": 1, "amount": 100}]})  # fmt: skip
    txn = paid["transaction"]["_id"]
    await books.until("the sales receipt", lambda: len(books.rows("SalesReceipt")) == 1)
    await books.crm("POST", f"/payments/transactions/{txn}/refund", {"amount": 30})
    await books.until("the first refund", lambda: len(books.rows("RefundReceipt")) == 1)
    await books.crm("POST", f"/payments/transactions/{txn}/refund", {"amount": 20})
    await books.until("the second refund", lambda: len(books.rows("RefundReceipt")) == 2)

    assert _totals(books.rows("SalesReceipt")) == [Decimal("100")]
    assert _totals(books.rows("RefundReceipt")) == [Decimal("30"), Decimal("20")]  # never 30 and 50


async def test_a_refunded_crm_invoice_payment_shows_a_refund_against_the_invoice(books: Books) -> None:
    contact = await books.crm("POST", "/contacts", {"locationId": books.location, "firstName": "Grace",
                                                     "lastName": "Hopper", "email": "grace@example.com",
                                                     "phone": "+15555550100"})  # fmt: skip
    invoice = await books.crm("POST", "/invoices", {"contactId": contact["id"], "send": True,
                                                    "items": [{"name": "Design", "qty": 1, "amount": 100}]})  # fmt: skip
    await books.until("the invoice in QuickBooks", lambda: len(books.rows("Invoice")) == 1)
    await books.crm("POST", f"/invoices/{invoice['_id']}/pay", {})
    await books.until("the invoice paid in QuickBooks", lambda: books.rows("Invoice")[0]["Balance"] == 0)
    (payment,) = books.rows("Payment")
    crm_txn = await _invoice_transaction(books, invoice["_id"])
    await books.crm("POST", f"/payments/transactions/{crm_txn}/refund", {"amount": 40})
    await books.until("the refund receipt", lambda: len(books.rows("RefundReceipt")) == 1)

    (refund,) = books.rows("RefundReceipt")
    (qbo_invoice,) = books.rows("Invoice")
    assert Decimal(str(refund["TotalAmt"])) == Decimal("40")
    assert refund["CustomerRef"]["value"] == qbo_invoice["CustomerRef"]["value"] == payment["CustomerRef"]["value"]
    assert f"invoice {qbo_invoice['DocNumber']}" in refund["PrivateNote"]
    assert books.rows("SalesReceipt") == []  # the sale is the invoice, booked once


async def _invoice_transaction(books: Books, invoice_id: str) -> str:
    location = books.location
    tokens = (await books.crm("GET", "/locations"))["locations"]
    token = next(loc["tokens"][0] for loc in tokens if loc["id"] == location)
    response = await books.http.get(
        f"{books.url}/sandbox/crmconnect/payments/transactions",
        params={"altId": location, "altType": "location"},
        headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"},
    )
    assert response.status_code == 200, response.text
    return str(next(t["_id"] for t in response.json()["data"] if t.get("invoiceId") == invoice_id))


async def test_a_crm_invoice_numbered_like_the_users_own_quickbooks_invoice_leaves_it_untouched(books: Books) -> None:
    qb = f"{books.url}/sandbox/quickbooks/_control/companies/{books.realm}"
    someone = (await books.http.post(f"{qb}/customers", json={"DisplayName": "Someone Else"})).json()["Customer"]
    theirs = (await books.http.post(f"{qb}/invoices", json={
        "DocNumber": "1001", "CustomerRef": {"value": someone["Id"]},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 75, "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 75}}],
    })).json()["Invoice"]  # fmt: skip
    contact = await books.crm("POST", "/contacts", {"locationId": books.location, "firstName": "Grace",
                                                     "lastName": "Hopper", "email": "grace@example.com",
                                                     "phone": "+15555550100"})  # fmt: skip
    invoice = await books.crm("POST", "/invoices", {"contactId": contact["id"], "send": True, "invoiceNumber": "1001",
                                                    "items": [{"name": "Design", "qty": 1, "amount": 100}]})  # fmt: skip
    await books.until("the copy in QuickBooks", lambda: len(books.rows("Invoice")) == 2)
    await books.crm("POST", f"/invoices/{invoice['_id']}/void")
    await books.until("the copy voided", lambda: any(r["TotalAmt"] == 0 for r in books.rows("Invoice")))

    rows = {r["Id"]: r for r in books.rows("Invoice")}
    assert rows[theirs["Id"]] == theirs  # the user's invoice: not a field changed
    (copy,) = [r for r in rows.values() if r["Id"] != theirs["Id"]]
    assert copy["DocNumber"] == "1001-CRM" and copy["PrivateNote"].startswith("Voided")
    activity = await books.admin("GET", f"/accounts/{ACCOUNT}/activity")
    assert any("copied as 1001-CRM" in str(entry) for entry in activity)


async def test_an_email_changed_in_quickbooks_changes_the_crm_contact_s_email(books: Books) -> None:
    qb = f"{books.url}/sandbox/quickbooks/_control/companies/{books.realm}"
    created = (await books.http.post(f"{qb}/customers", json={
        "DisplayName": "Sam Same", "GivenName": "Sam", "FamilyName": "Same",
        "PrimaryEmailAddr": {"Address": "sam@example.com"},
    })).json()["Customer"]  # fmt: skip
    engine = books.crm_engine

    def contacts() -> list[dict[str, Any]]:
        return [c for c in engine.state.contacts.values() if c["locationId"] == books.location]

    await books.until(
        "the customer as a CRM contact", lambda: [c.get("email") for c in contacts()] == ["sam@example.com"]
    )
    await books.http.post(
        f"{qb}/customers/{created['Id']}", json={"PrimaryEmailAddr": {"Address": "sam.b@example.com"}}
    )
    await books.until(
        "the new e-mail in the CRM", lambda: [c.get("email") for c in contacts()] == ["sam.b@example.com"]
    )
    (contact,) = contacts()
    assert (contact["firstName"], contact["lastName"]) == ("Sam", "Same")
