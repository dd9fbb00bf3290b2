"""The UI in headless Chromium: sign in → Settings › Integrations → a card → toggle → activity → retry,
live progress, keyboard focus, contrast and phone width. Screenshots of the main screens come from here."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ledgerbridge.cards import CardProgress
from playwright.async_api import Browser, Page, async_playwright, expect

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
from tests.ui.conftest import TOKEN, UiServer
from tests.ui.test_routes import settle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: run scripts/install-browser (installs Debian's chromium)"
)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Shots:
    return Shots(tmp_path / "screenshots")


async def sign_in(page: Page, url: str, next_path: str = "/") -> None:
    await page.goto(url + next_path)
    await page.get_by_label("Admin token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(url + next_path)


async def assert_readable(page: Page) -> None:
    assert await low_contrast(page) == []
    assert not await overflows_horizontally(page)


async def test_sign_in_to_retry(chromium: Browser, ui_server: UiServer, shots: Shots) -> None:
    url, runtime, books = ui_server.url, ui_server.runtime, ui_server.books
    page = await chromium.new_page(viewport=DESKTOP)

    # sign in: a wrong token is refused in words, the right one lands on the accounts
    await page.goto(url + "/")
    await expect(page).to_have_url(re.compile(r"/signin\?next=%2F$"))
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await assert_readable(page)
    await shots.take(page, "signin")
    await page.get_by_label("Admin token").fill("wrong")
    await page.get_by_label("Admin token").press("Enter")
    await expect(page.get_by_role("alert")).to_contain_text("That is not the admin token")
    await expect(page.get_by_label("Admin token")).to_have_attribute("aria-invalid", "true")
    await page.get_by_label("Admin token").fill(TOKEN)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    await assert_readable(page)
    await shots.take(page, "accounts")

    # choose an account: Settings › Integrations with the plugin's card
    await page.get_by_role("link", name="Acme Ltd", exact=True).click()
    await expect(page).to_have_url(url + "/accounts/acme/settings/integrations")
    card = page.get_by_role("region", name="Demo Books")
    await expect(card).to_contain_text("Books of Acme Ltd")
    await expect(card.get_by_role("link", name="Open books")).to_have_attribute(
        "href", f"{url}/plugins/books/books?account=acme"
    )

    # the review-request toggle saves the setting
    toggle = card.get_by_role("switch", name="Ask for a review after payment")
    await expect(toggle).to_have_attribute("aria-checked", "false")
    await assert_readable(page)
    await shots.take(page, "integrations-1280")
    await toggle.click()
    await expect(page.get_by_role("status")).to_contain_text("review requests turned on")
    await expect(card.get_by_role("switch", name="Ask for a review after payment")).to_have_attribute(
        "aria-checked", "true"
    )
    assert (await runtime.store.get_plugin_state("acme", "books")).settings["review_requests"] is True

    # the plugin's own switch, by keyboard
    switch = card.get_by_role("switch", name="On for this account")
    await switch.focus()
    assert (await focus_outline(page)).startswith("solid")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Turn books off for Acme Ltd?")).to_be_visible()
    await page.get_by_role("button", name="Turn books off").press("Enter")
    await expect(card.get_by_role("switch", name="On for this account")).to_have_attribute("aria-checked", "false")
    assert "books" not in await runtime.store.enabled_plugins("acme")
    await card.get_by_role("switch", name="On for this account").click()
    await expect(card.get_by_role("switch", name="On for this account")).to_have_attribute("aria-checked", "true")

    # a payment the vendor refuses becomes a dead letter, explained on the activity page
    await ui_server.pay("acme", "p-1")
    assert await settle(runtime, "acme") == {"dead": 1}
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Activity").click()
    await expect(page.get_by_role("heading", name="Activity", exact=True)).to_be_visible()
    row = page.locator("#delivery-1")
    await expect(row).to_contain_text("Dead letter")
    await expect(row).to_contain_text("Required param missing: Line.Amount")
    await expect(row).to_contain_text("1-abc-tid")
    await assert_readable(page)
    await shots.take(page, "activity-1280")

    # retry it once the cause is fixed: delivered, and only once more
    books.reject_payments = False
    await row.get_by_role("button", name="Retry delivery 1").click()
    await expect(page.get_by_role("status")).to_contain_text("Delivery 1 (payment to books) is queued")
    assert await settle(runtime, "acme") == {"done": 1}
    await page.reload()
    await expect(page.locator("#delivery-1")).to_contain_text("Done")
    await expect(page.get_by_role("button", name="Retry delivery 1")).to_have_count(0)
    assert books.payments == [("acme", "p-1"), ("acme", "p-1")]

    # signing out ends the session
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_contain_text("You are signed out.")
    await page.goto(url + "/accounts/acme/activity")
    await expect(page).to_have_url(re.compile(r"/signin\?next="))


async def test_phone_width(chromium: Browser, ui_server: UiServer, shots: Shots) -> None:
    await ui_server.pay("acme", "p-9")
    await settle(ui_server.runtime, "acme")
    context = await chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await sign_in(page, ui_server.url, "/accounts/acme/settings/integrations")
    await expect(page.get_by_role("region", name="Demo Books")).to_be_visible()
    await assert_readable(page)
    await shots.take(page, "integrations-375")
    await page.goto(ui_server.url + "/accounts/acme/activity")
    await expect(page.locator("#delivery-1")).to_contain_text("Dead letter")
    await expect(page.get_by_role("button", name="Retry delivery 1")).to_be_visible()
    await assert_readable(page)
    await shots.take(page, "activity-375")
    await context.close()


@pytest.mark.slow
async def test_progress_updates_live(chromium: Browser, ui_server: UiServer) -> None:
    books = ui_server.books
    books.progress = CardProgress(label="Importing invoices", done=10, total=40)
    page = await chromium.new_page(viewport=DESKTOP)
    await sign_in(page, ui_server.url, "/accounts/acme/settings/integrations")
    live = page.locator("#plugin-books-progress")
    await expect(live).to_have_attribute("aria-live", "polite")
    await expect(live).to_contain_text("Importing invoices: 10 of 40 (25%)")
    books.progress = CardProgress(label="Importing invoices", done=30, total=40)
    await expect(live).to_contain_text("Importing invoices: 30 of 40 (75%)", timeout=6000)
    await expect(page.locator("#plugin-books progress")).to_have_attribute("value", "30")
    books.progress = None
    await expect(page.locator("#plugin-books progress")).to_have_count(0, timeout=6000)
    await expect(page.get_by_role("region", name="Demo Books")).to_contain_text("Books of Acme Ltd")


async def test_keyboard_reaches_everything_with_a_visible_focus(chromium: Browser, ui_server: UiServer) -> None:
    page = await chromium.new_page(viewport=DESKTOP)
    await sign_in(page, ui_server.url, "/accounts/acme/settings/integrations")
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    seen: list[str] = []
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement === document.body"):
            break  # past the last control
        focused = await page.evaluate("() => document.activeElement.outerHTML.slice(0, 120)")
        assert (await focus_outline(page)).startswith("solid"), focused
        seen.append(await page.evaluate("() => document.activeElement.textContent.trim().split('\\n')[0]"))
    for name in ("Integrations", "Activity", "Sign out", "On for this account", "Open books", "Refresh now"):
        assert any(name in text for text in seen), (name, seen)


async def test_a_cards_post_action_posts_to_the_plugin(chromium: Browser, ui_server: UiServer) -> None:
    page = await chromium.new_page(viewport=DESKTOP)
    await sign_in(page, ui_server.url, "/accounts/acme/settings/integrations")
    await page.get_by_role("button", name="Refresh now").click()
    await expect(page).to_have_url(ui_server.url + "/accounts/acme/settings/integrations")
    for _ in range(50):
        if ui_server.books.refreshes:
            break
        await asyncio.sleep(0.02)
    assert ui_server.books.refreshes == ["acme"]
