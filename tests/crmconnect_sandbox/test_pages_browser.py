"""The CRM sandbox's pages in headless Chromium, mounted where `serve` mounts them: open the home page, add a
contact, take an order-form payment, create and send an invoice; readable (contrast, labels, focus) at 1280
and at 375 px wide. Screenshots go to $LEDGERBRIDGE_SCREENSHOTS when it is set."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ledgerbridge.testing import running_server
from ledgerbridge_crmconnect.sandbox import LocationSeed, SandboxEngine, create_app
from playwright.async_api import Browser, Page, async_playwright, expect
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.crmconnect_sandbox.conftest import Receiver, make_config
from tests.ui.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Shots,
    focus_outline,
    low_contrast,
    overflows_horizontally,
)

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: run scripts/install-browser (installs Debian's chromium)"
)
PREFIX = "/sandbox/crmconnect"


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def mounted(receiver: Receiver) -> AsyncIterator[tuple[str, SandboxEngine]]:
    config = make_config(webhook_url=receiver.url)
    config.locations = [LocationSeed(id="sandboxLocation00001", name="Bright Smiles Dental", token="pit-1")]
    sandbox = create_app(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sandbox.router.lifespan_context(sandbox):
            yield

    async with running_server(Starlette(routes=[Mount(PREFIX, app=sandbox)], lifespan=lifespan)) as url:
        yield url + PREFIX, sandbox.state.sandbox


async def assert_readable(page: Page) -> None:
    assert await low_contrast(page) == []
    assert not await overflows_horizontally(page)


async def test_take_an_order_form_payment_then_create_and_send_an_invoice(
    chromium: Browser, mounted: tuple[str, SandboxEngine], receiver: Receiver, tmp_path: Path
) -> None:
    url, engine = mounted
    shots = Shots(tmp_path / "screenshots")
    page = await chromium.new_page(viewport=DESKTOP)

    # the home page: the location, empty, with its three actions; the keyboard starts at "Skip to content"
    await page.goto(url + "/")
    await expect(page.get_by_role("heading", name="Bright Smiles Dental", level=1)).to_be_visible()
    for section in ("Contacts", "Invoices", "Payments", "Subscriptions"):
        await expect(page.get_by_role("heading", name=section, level=2)).to_be_visible()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    assert (await focus_outline(page)).startswith("solid 3px")
    await assert_readable(page)

    # a contact
    await page.get_by_role("link", name="Add a contact").click()
    await page.get_by_label("First name").fill("Grace")
    await page.get_by_label("Last name").fill("Hopper")
    await page.get_by_label("E-mail").fill("grace@example.com")
    await page.get_by_role("button", name="Add contact").click()
    await expect(page.get_by_role("status")).to_have_text("Contact Grace Hopper <grace@example.com> added.")

    # an order-form payment; a missing price is explained first
    await page.get_by_role("link", name="Take a payment").click()
    await page.get_by_label("Customer").select_option(label="Grace Hopper <grace@example.com>")
    await page.get_by_label("How they pay").select_option(label="Order form")
    line = page.get_by_role("group", name="What is being paid for: line 1")
    await line.get_by_label("Product or service").fill("Cleaning")
    await page.get_by_role("button", name="Take payment").click()
    await expect(page.get_by_role("alert")).to_contain_text("Enter the unit price on line 1.")
    await expect(page.get_by_role("alert")).to_be_focused()
    await expect(line.get_by_label("Unit price ($)")).to_have_attribute("aria-invalid", "true")
    await assert_readable(page)
    await shots.take(page, "crm-sandbox-payment-error")
    await line.get_by_label("Unit price ($)").fill("120")
    await line.get_by_label("Tax (%)").fill("10")
    await page.get_by_role("button", name="Take payment").click()
    await expect(page.get_by_role("status")).to_have_text("Payment of $132.00 taken from Grace Hopper (order form).")
    payments = page.get_by_role("table", name="Payments")
    await expect(payments).to_contain_text("Order form")
    await expect(payments).to_contain_text("$132.00")

    # an invoice, created and sent in one go
    await page.get_by_role("link", name="New invoice").click()
    await page.get_by_label("Customer").select_option(label="Grace Hopper <grace@example.com>")
    await page.get_by_label("Invoice name").fill("Crown, first visit")
    first = page.get_by_role("group", name="Invoice: line 1")
    await first.get_by_label("Product or service").fill("Crown")
    await first.get_by_label("Unit price ($)").fill("450")
    await page.get_by_role("button", name="Create and send").click()
    await expect(page.get_by_role("heading", name="Invoice 1001", level=1)).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("Invoice 1001 sent to grace@example.com.")
    await expect(page.get_by_role("button", name="Record payment")).to_be_visible()
    await assert_readable(page)
    await shots.take(page, "crm-sandbox-invoice")

    await engine.webhooks.drain()
    assert [b["type"] for b in receiver.bodies()] == [
        "ContactCreate", "OrderCreate", "OrderStatusUpdate", "InvoiceCreate", "InvoiceSent",
    ]  # fmt: skip

    # back home: everything listed, and the same pages work at phone width
    await page.get_by_role("link", name="Bright Smiles Dental").click()
    await expect(page.get_by_role("heading", name="Bright Smiles Dental", level=1)).to_be_visible()
    await expect(page.get_by_role("table", name="Invoices")).to_contain_text("Sent")
    await assert_readable(page)
    await shots.take(page, "crm-sandbox-home")
    await page.set_viewport_size(PHONE)
    for path in ("", "/payments/new", "/invoices/new"):
        await page.goto(f"{url}/locations/sandboxLocation00001{path}")
        await assert_readable(page)
    await page.goto(url + "/locations/sandboxLocation00001")
    await shots.take(page, "crm-sandbox-home-375")
