"""The whole product in headless Chromium, against the built-in plugins and their sandboxes mounted in one
server: QB Connect → the QuickBooks sandbox's sign-in → the connected card → the review-request toggles →
a payment taken in the CRM sandbox → its sales receipt in the activity view and on the QuickBooks sandbox's
page → QuickBooks turned off → the next payment not synced."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ledgerbridge_crmconnect.plugin as crmconnect_plugin
import ledgerbridge_quickbooks.plugin as quickbooks_plugin
import pytest
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.settings import Settings
from ledgerbridge.testing import free_port, running_server
from ledgerbridge.web.app import create_app
from ledgerbridge_crmconnect.connection import SANDBOX_LOCATION_ID
from ledgerbridge_crmconnect.poller import TICK_ENV
from playwright.async_api import Browser, Page, async_playwright, expect
from starlette.routing import Mount

from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, Shots, low_contrast, overflows_horizontally
from tests.ui.conftest import TOKEN

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: run scripts/install-browser (installs Debian's chromium)"
)

ITEMS = [{"name": "Coaching session", "qty": 1, "amount": 120, "taxes": [{"name": "VAT", "rate": 10}]}]
VENDOR_ENV = [
    *(f"LEDGERBRIDGE_QBO_{n}" for n in ("CLIENT_ID", "CLIENT_SECRET", "ENVIRONMENT", "VERIFIER_TOKEN", "API_URL")),
    "LEDGERBRIDGE_CRM_CLIENT_ID",
    "LEDGERBRIDGE_CRM_CLIENT_SECRET",
    "LEDGERBRIDGE_CRM_SANDBOX",
]


@dataclass
class Product:
    url: str
    runtime: Runtime
    sandboxes: dict[str, Any]
    http: httpx.AsyncClient

    async def crm(self, method: str, path: str, body: Any = None) -> Any:
        """Act as the CRM user, through the CRM sandbox's control API."""
        response = await self.http.request(method, f"{self.url}/sandbox/crmconnect/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def qbo(self, method: str, path: str, body: Any = None) -> Any:
        """Act as the QuickBooks user, through the QuickBooks sandbox's control API."""
        response = await self.http.request(method, f"{self.url}/sandbox/quickbooks/_control{path}", json=body)
        assert response.status_code < 300, response.text
        return response.json()

    async def review_messages(self, email: str) -> list[dict[str, Any]]:
        contacts = {c["id"]: c for c in self.sandboxes["crmconnect"].state.sandbox.state.contacts.values()}
        messages = (await self.crm("GET", "/messages"))["messages"]
        return [m for m in messages if contacts.get(m["contactId"], {}).get("email") == email]

    async def take_payment(self, email: str) -> str:
        contact = await self.crm(
            "POST", "/contacts", {"locationId": SANDBOX_LOCATION_ID, "firstName": "Ada", "lastName": "Lovelace",
                                  "email": email},
        )  # fmt: skip
        result = await self.crm("POST", "/payments/order-form", {"contactId": contact["id"], "items": ITEMS})
        transaction_id: str = result["transaction"]["_id"]
        return transaction_id

    def crm_payments_stored(self, account: str) -> int:
        """Payment events the CRM plugin has stored in the server's inbox (read straight from the database)."""
        with sqlite3.connect(self.runtime.settings.database_path) as db:
            row = db.execute(
                "SELECT COUNT(*) FROM events WHERE account_id = ? AND source = 'crmconnect' AND type = 'payment'",
                (account,),
            ).fetchone()
        return int(row[0])

    async def delivered(self, account: str, plugin: str, event_type: str) -> bool:
        deliveries = await self.runtime.store.list_deliveries(account, "done")
        return any(d.plugin == plugin and d.event_type == event_type for d in deliveries)

    def receipts(self, realm: str) -> list[dict[str, Any]]:
        return list(self.sandboxes["quickbooks"].state.sandbox.company(realm).table("SalesReceipt").values())


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 20.0) -> None:
    async def loop() -> None:
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Product]:
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(TICK_ENV, "0.2")
    port = free_port()
    settings = Settings(
        data_dir=tmp_path, admin_token=TOKEN, port=port, public_url=f"http://127.0.0.1:{port}",
        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, poll_interval_seconds=0.05, max_attempts=8,
    )  # fmt: skip
    manager = PluginManager()
    manager.register(quickbooks_plugin.QuickBooksPlugin, "quickbooks")
    manager.register(crmconnect_plugin.CrmConnectPlugin, "crmconnect")
    manager.check_pending()
    runtime = Runtime(settings, manager)
    app = create_app(settings, runtime=runtime)
    sandboxes = {r.path.removeprefix("/sandbox/"): r.app for r in app.routes if isinstance(r, Mount)
                 and r.path.startswith("/sandbox/")}  # fmt: skip
    assert set(sandboxes) == {"crmconnect", "quickbooks"}
    async with running_server(app, port=port) as url, httpx.AsyncClient(timeout=30) as http:
        yield Product(url, runtime, sandboxes, http)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def switch_in(page: Page, card: str, name: str) -> Any:
    return page.get_by_role("region", name=card).get_by_role("switch", name=name)


async def test_connect_pay_sync_then_turn_off(chromium: Browser, product: Product, tmp_path: Path) -> None:
    shots = Shots(tmp_path / "screenshots")
    runtime = product.runtime
    context = await chromium.new_context(viewport=DESKTOP)
    page = await context.new_page()

    # a new user signs in and creates an account; the sandbox banner says how to act as each vendor's user
    await page.goto(product.url + "/")
    await page.get_by_label("Admin token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    banner = page.get_by_role("complementary", name="Sandbox mode")
    await expect(banner.get_by_role("link", name=re.compile("QuickBooks sandbox"))).to_have_attribute(
        "href", product.url + "/sandbox/quickbooks/companies"
    )
    await expect(banner.get_by_role("link", name=re.compile("CRM Connect sandbox"))).to_be_visible()
    await page.get_by_label("Name", exact=True).fill("Acme Coaching")
    await page.get_by_role("button", name="Create account").click()
    await expect(page).to_have_url(product.url + "/accounts/acme-coaching/settings/integrations")
    qb = page.get_by_role("region", name="QuickBooks Online")
    crm = page.get_by_role("region", name="CRM Connect")
    await expect(qb).to_contain_text("Not connected")
    await expect(crm).to_be_visible()

    # QB Connect → the QuickBooks sandbox's sign-in page → back on this page, connected
    await qb.get_by_role("link", name="QB Connect").click()
    await expect(page).to_have_title(re.compile("Connect to QuickBooks"))
    await page.get_by_role("button", name="Connect").click()
    await expect(page).to_have_url(re.compile(r"/accounts/acme-coaching/settings/integrations\?.*connected=1"))
    realm = re.search(r"realm_id=(\d+)", page.url).group(1)  # type: ignore[union-attr]
    await expect(page.get_by_role("status").first).to_contain_text("Connected to")
    await expect(qb.locator(".status")).to_have_text("Connected")
    await expect(qb).to_contain_text(realm)

    # one review-request switch, on the books' card: the CRM sandbox's review page is the default link
    review = await switch_in(page, "QuickBooks Online", "Ask for a review when a customer's first invoice is paid")
    await expect(review).to_have_attribute("aria-checked", "false")
    await expect(
        page.get_by_role("region", name="CRM Connect").get_by_role("switch", name=re.compile("review"))
    ).to_have_count(0)
    await review.click()
    await expect(review).to_have_attribute("aria-checked", "true")
    assert (await runtime.store.get_plugin_state("acme-coaching", "reviews")).settings["enabled"] is True
    assert await low_contrast(page) == []
    await shots.take(page, "journey-integrations")
    await page.set_viewport_size(PHONE)
    assert not await overflows_horizontally(page)  # long URLs and ids in the real cards wrap
    await shots.take(page, "journey-integrations-375")
    await page.set_viewport_size(DESKTOP)

    # a payment taken in the CRM sandbox becomes a sales receipt in the QuickBooks sandbox
    await product.take_payment("ada@example.com")
    await until(lambda: len(product.receipts(realm)) == 1)
    await until(lambda: product.delivered("acme-coaching", "quickbooks", "payment"))  # marked done after the write
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    done = page.locator("tr.state-done", has_text="quickbooks")
    await expect(done.filter(has_text="payment")).to_have_count(1)
    await shots.take(page, "journey-activity")
    books = await context.new_page()
    await books.goto(f"{product.url}/sandbox/quickbooks/companies/{realm}")
    receipts = books.locator("table").nth(2)  # Customer, Invoice, SalesReceipt, Payment
    await expect(books.get_by_role("heading", name="SalesReceipt")).to_be_visible()
    await expect(receipts).to_contain_text("Ada Lovelace")
    await expect(receipts).to_contain_text("132")
    await shots.take(books, "journey-quickbooks-sandbox")

    # the customer's first QuickBooks invoice paid in full: one review request reaches the contact in the CRM
    customer = await product.qbo(
        "POST",
        f"/companies/{realm}/Customer",
        {"DisplayName": "Alan Turing", "PrimaryEmailAddr": {"Address": "alan@example.com"}},
    )
    invoice = await product.qbo("POST", f"/companies/{realm}/Invoice", {
        "CustomerRef": {"value": customer["Customer"]["Id"]},
        "Line": [{"DetailType": "SalesItemLineDetail", "Amount": 90, "SalesItemLineDetail": {"Qty": 1, "UnitPrice": 90}}],
    })  # fmt: skip
    await product.qbo("POST", f"/companies/{realm}/invoices/{invoice['Invoice']['Id']}/payments", {})
    await until(lambda: product.review_messages("alan@example.com"), timeout=30)
    await asyncio.sleep(1.0)  # the payment's own webhook and the invoice's both arrive: still one request
    assert len(await product.review_messages("alan@example.com")) == 1

    # QuickBooks turned off for the account: the next payment is not synced
    await page.get_by_role("link", name="Integrations").first.click()
    await (await switch_in(page, "QuickBooks Online", "On for this account")).click()
    await expect(await switch_in(page, "QuickBooks Online", "On for this account")).to_have_attribute(
        "aria-checked", "false"
    )
    stored = product.crm_payments_stored("acme-coaching")
    await product.take_payment("grace@example.com")
    await until(lambda: product.crm_payments_stored("acme-coaching") == stored + 1)
    await asyncio.sleep(1.0)  # time enough for a delivery, were there one
    assert len(product.receipts(realm)) == 1
    await books.reload()
    await expect(books.locator("table").nth(2)).not_to_contain_text("grace")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    await expect(page.locator(".log")).to_contain_text("quickbooks disabled")
    # ...but kept, with its reason; QuickBooks back on and "Send now" books it, once
    kept = page.locator("tr.state-skipped", has_text="payment")
    await expect(kept).to_contain_text("no books (accounting) plugin is on for this account")
    await page.get_by_role("link", name="Integrations").first.click()
    await (await switch_in(page, "QuickBooks Online", "On for this account")).click()
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    await page.get_by_role("button", name="Send all skipped now").click()
    await expect(page.get_by_role("status").first).to_contain_text("queued to be sent")
    await until(lambda: len(product.receipts(realm)) == 2)

    async def kept_again() -> bool:  # the two pending orders were looked at again, and kept
        return (await runtime.store.count_deliveries("acme-coaching")).get("skipped", 0) == 2

    await until(kept_again)
    await page.reload()  # the page after the first send may have been drawn while they were on their way
    await page.get_by_role("button", name="Send all skipped now").click()  # again: nothing is booked twice
    await asyncio.sleep(1.0)
    assert len(product.receipts(realm)) == 2
