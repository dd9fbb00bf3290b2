"""The whole product in headless Chromium, against the built-in plugins and their sandboxes mounted in one
server: QB Connect → the QuickBooks sandbox's sign-in → the connected card → the review-request toggles →
a payment taken in the CRM sandbox → its sales receipt in the activity view and on the QuickBooks sandbox's
page → QuickBooks turned off → the next payment not synced."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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

from tests import stores
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, Shots, low_contrast, overflows_horizontally
from tests.ui.conftest import TOKEN
from tests.ui.conftest import Browser as UiBrowser

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

    async def payments_kept_for_later(self, account: str) -> int:
        """Payments the server stored but did not book (the books were off): skipped, with their reason."""
        return len(await self.runtime.store.list_deliveries(account, "skipped", 1000, event_type="payment"))

    async def delivered(self, account: str, plugin: str, event_type: str) -> bool:
        deliveries = await self.runtime.store.list_deliveries(account, "done")
        return any(d.plugin == plugin and d.event_type == event_type for d in deliveries)

    def receipts(self, realm: str) -> list[dict[str, Any]]:
        return list(self.sandboxes["quickbooks"].state.sandbox.company(realm).table("SalesReceipt").values())

    def invoice_balance(self, realm: str) -> float | None:
        invoices = list(self.sandboxes["quickbooks"].state.sandbox.company(realm).table("Invoice").values())
        return float(invoices[-1].get("Balance", -1)) if invoices else None

    async def idle(self, account: str) -> bool:
        return (await self.runtime.store.count_deliveries(account)).get("pending", 0) == 0


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


@contextlib.asynccontextmanager
async def serve(data_dir: Path, port: int) -> AsyncIterator[Product]:
    """The server with both built-in plugins and both sandboxes mounted, on a data dir (kept across calls)."""
    settings = Settings(
        data_dir=data_dir, admin_token=TOKEN, port=port, public_url=f"http://127.0.0.1:{port}",
        backoff_base_seconds=0.05, backoff_cap_seconds=0.2, poll_interval_seconds=0.05, max_attempts=8,
        database_url=stores.database_url(),
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


def without_vendor_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VENDOR_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(TICK_ENV, "0.2")


@pytest.fixture
async def product(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Product]:
    without_vendor_credentials(monkeypatch)
    async with serve(tmp_path, free_port()) as running:
        yield running


async def qb_sign_in(browser: UiBrowser, account: str, realm: str = "new") -> httpx.Response:
    """QB Connect → the QuickBooks sandbox's sign-in, allowed → the plugin's callback, as a browser does."""
    start = await browser.client.get(f"/plugins/quickbooks/connect?account={account}")
    assert start.status_code == 302, start.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    form = {name: query.get(name, "") for name in ("client_id", "redirect_uri", "state", "scope")}
    allowed = await browser.client.post(
        start.headers["location"].split("?")[0],
        data={**form, "email": "owner@example.com", "realm_id": realm, "company_name": "Acme", "action": "allow"},
    )
    assert allowed.status_code in (302, 303, 307), allowed.text
    return await browser.client.get(allowed.headers["location"])


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def both_widths(page: Page, shots: Shots, name: str) -> None:
    """A screen at 1280 and at 375 px wide: readable (contrast), nothing overflowing at phone width."""
    assert await low_contrast(page) == [], name
    await shots.take(page, name)
    await page.set_viewport_size(PHONE)
    assert not await overflows_horizontally(page), name
    assert await low_contrast(page) == [], name
    await shots.take(page, name + "-375")
    await page.set_viewport_size(DESKTOP)


async def choose_contact(page: Page, name: str) -> None:
    value = await page.locator('[name="contactId"] option', has_text=name).first.get_attribute("value")
    await page.locator('[name="contactId"]').select_option(value)


async def switch_in(page: Page, card: str, name: str) -> Any:
    return page.get_by_role("region", name=card).get_by_role("switch", name=name)


@pytest.mark.slow
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
    await expect(crm.locator(".status")).to_have_text("Connected")  # sandbox mode: the CRM connects itself

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
    await page.get_by_text("How the request is sent").click()
    await page.get_by_label("Review link").fill("https://reviews.example/acme-coaching")
    await page.get_by_label("Review requests").get_by_role("button", name="Save", exact=True).click()
    await expect(page.get_by_role("status").first).to_contain_text("Review-request settings saved.")
    settings = (await runtime.store.get_plugin_state("acme-coaching", "reviews")).settings
    assert settings["review_link"] == "https://reviews.example/acme-coaching"
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
    books = await context.new_page()
    await books.goto(f"{product.url}/sandbox/quickbooks/companies/{realm}")
    receipts = books.locator("table").nth(2)  # Customer, Invoice, SalesReceipt, Payment
    await expect(books.get_by_role("heading", name="SalesReceipt")).to_be_visible()
    await expect(receipts).to_contain_text("Ada Lovelace")
    await expect(receipts).to_contain_text("132")
    await shots.take(books, "journey-quickbooks-sandbox")

    # the CRM user, by clicking in the CRM sandbox: a contact, an order-form payment, an invoice sent and paid
    crm_page = await context.new_page()
    location = f"{product.url}/sandbox/crmconnect/locations/{SANDBOX_LOCATION_ID}"
    await crm_page.goto(location + "/contacts/new")
    for name, value in (("firstName", "Grace"), ("lastName", "Hopper"), ("email", "grace@example.com")):
        await crm_page.locator(f'[name="{name}"]').fill(value)
    await crm_page.get_by_role("button", name="Add contact").click()
    await crm_page.goto(location + "/payments/new")
    await choose_contact(crm_page, "Grace Hopper")
    await crm_page.locator('[name="kind"]').select_option("order_form")
    for name, value in (("line0_name", "Coaching session"), ("line0_qty", "1"), ("line0_price", "198.50")):
        await crm_page.locator(f'[name="{name}"]').fill(value)
    await crm_page.get_by_role("button", name="Take payment").click()
    await crm_page.goto(location + "/invoices/new")
    await choose_contact(crm_page, "Grace Hopper")
    for name, value in (("name", "March coaching"), ("line0_name", "Coaching session"), ("line0_qty", "1"),
                        ("line0_price", "300")):  # fmt: skip
        await crm_page.locator(f'[name="{name}"]').fill(value)
    await crm_page.get_by_role("button", name="Create and send").click()
    await expect(crm_page.get_by_role("button", name="Record payment")).to_be_visible()
    await until(lambda: product.delivered("acme-coaching", "quickbooks", "invoice_change"), timeout=30)
    await crm_page.locator('[name="amount"]').fill("300")
    await crm_page.get_by_role("button", name="Record payment").click()
    await until(lambda: len(product.receipts(realm)) == 2, timeout=30)
    await until(lambda: product.invoice_balance(realm) == 0, timeout=30)
    await until(lambda: product.idle("acme-coaching"), timeout=30)

    # Activity says it in business words, with links to the documents in the QuickBooks sandbox
    await page.goto(f"{product.url}/accounts/acme-coaching/activity")
    grace = page.locator("tr.state-done", has_text="Payment $198.50 · Grace Hopper · order form")
    await expect(grace).to_have_count(1)
    receipt = grace.get_by_role("link", name=re.compile(r"^QuickBooks sales receipt \S+$"))
    href = await receipt.get_attribute("href")
    assert href is not None and href.startswith(f"{product.url}/sandbox/quickbooks/companies/{realm}#salesreceipt-")
    paid = page.locator("tr.state-done", has=page.locator(".headline", has_text=re.compile(r"^Invoice 1001 paid$")))
    await expect(paid).to_contain_text("balance 0.00")
    await both_widths(page, shots, "journey-activity")
    await receipt.click()
    await expect(page.locator("#" + href.split("#")[1])).to_contain_text("Grace Hopper")
    await page.go_back()
    await paid.get_by_role("link", name=re.compile("^History")).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Invoice 1001")
    steps = page.locator(".timeline li")
    await expect(steps.first).to_contain_text("sent, total $300.00")
    await expect(steps.last).to_contain_text("paid $300.00, balance $0.00")
    await expect(steps.last.get_by_role("link", name=re.compile("QuickBooks invoice 1001"))).to_be_visible()
    await both_widths(page, shots, "journey-timeline")

    # the account list says how each account is doing; the books' settings form comes from its schema
    await page.goto(product.url + "/")
    await expect(page.locator("#account-acme-coaching .account-health")).to_contain_text("All good")
    await both_widths(page, shots, "journey-accounts")
    await page.goto(product.url + "/accounts/acme-coaching/settings/integrations")
    await page.locator("#plugin-quickbooks-settings summary").click()
    await page.get_by_label("Match CRM products to QuickBooks products by").select_option("sku")
    await page.get_by_role("button", name="Save settings of QuickBooks Online").click()
    await expect(page.get_by_role("status").first).to_contain_text("Settings saved.")
    assert (await runtime.store.get_plugin_state("acme-coaching", "quickbooks")).settings["item_mapping"] == "sku"
    await page.locator("#plugin-quickbooks-settings summary").click()
    await page.locator("#plugin-quickbooks-settings").scroll_into_view_if_needed()
    await both_widths(page, shots, "journey-settings")

    # a connection problem is a page with a way back
    await page.goto(product.url + "/plugins/quickbooks/callback?state=already-used")
    await expect(page.get_by_role("heading", name="This sign-in link has expired")).to_be_visible()
    await expect(page.get_by_role("link", name="Back to Integrations")).to_be_visible()
    await both_widths(page, shots, "journey-connection-error")

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
    await until(lambda: product.delivered("acme-coaching", "crmconnect", "first_invoice_paid"))
    await page.goto(f"{product.url}/accounts/acme-coaching/activity?kind=first_invoice_paid")
    asked = page.locator("tr.state-done", has_text="Review request · Alan Turing · by email")
    message = asked.get_by_role("link", name="CRM Connect e-mail to Alan Turing")
    await expect(message).to_have_attribute(
        "href", re.compile(rf"/sandbox/crmconnect/locations/{SANDBOX_LOCATION_ID}#messages-")
    )
    await message.click()
    await expect(page.locator("#messages")).to_be_visible()
    await expect(page.locator("tr[id^=messages-]", has_text="Alan Turing")).to_contain_text("https://reviews.example")
    await page.go_back()

    # QuickBooks turned off for the account: the next payment is not synced
    await page.get_by_role("link", name="Integrations").first.click()
    await (await switch_in(page, "QuickBooks Online", "On for this account")).click()
    await page.get_by_role("button", name="Turn quickbooks off").click()  # after a confirmation
    await expect(await switch_in(page, "QuickBooks Online", "On for this account")).to_have_attribute(
        "aria-checked", "false"
    )
    booked = len(product.receipts(realm))
    kept = await product.payments_kept_for_later("acme-coaching")
    await product.take_payment("grace@example.com")

    async def kept_one_more() -> bool:
        return await product.payments_kept_for_later("acme-coaching") == kept + 1

    await until(kept_one_more)
    await asyncio.sleep(1.0)  # time enough for a delivery, were there one
    assert len(product.receipts(realm)) == booked
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
    await until(lambda: len(product.receipts(realm)) == booked + 1)
    await until(lambda: product.idle("acme-coaching"))
    await page.reload()  # nothing skipped is left to send (routine checks are not offered)
    await expect(page.get_by_role("button", name="Send all skipped now")).to_have_count(0)
    await asyncio.sleep(1.0)
    assert len(product.receipts(realm)) == booked + 1


async def test_a_restart_keeps_the_connections_the_sandboxes_and_the_activity(
    chromium: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_vendor_credentials(monkeypatch)
    port = free_port()
    async with serve(tmp_path, port) as first:
        await first.runtime.create_account("acme", "Acme Coaching")
        admin = UiBrowser(first.url)
        async with admin.client:
            await admin.sign_in()
            connected = await qb_sign_in(admin, "acme")
        realm = parse_qs(urlsplit(connected.headers["location"]).query)["realm_id"][0]
        await first.take_payment("ada@example.com")
        await until(lambda: first.delivered("acme", "quickbooks", "payment"))

    # the same data dir, a new process: still connected, the same books, the same activity with working links
    async with serve(tmp_path, port) as second:
        page = await chromium.new_page(viewport=DESKTOP)
        await page.goto(second.url + "/accounts/acme/settings/integrations")
        await page.get_by_label("Admin token").fill(TOKEN)
        await page.get_by_role("button", name="Sign in").click()
        books = page.get_by_role("region", name="QuickBooks Online")
        await expect(books.locator(".status")).to_have_text("Connected")
        await expect(books).to_contain_text(realm)
        await expect(books.locator(".health-state")).to_have_text("Healthy")
        await page.goto(second.url + "/accounts/acme/activity")
        row = page.locator("tr.state-done", has_text="Payment $132.00 · Ada Lovelace · order form")
        await row.get_by_role("link", name=re.compile("^QuickBooks sales receipt")).click()
        await expect(page.locator("tr[id^=salesreceipt-]")).to_contain_text("Ada Lovelace")
        await second.take_payment("grace@example.com")
        await until(lambda: len(second.receipts(realm)) == 2)
