"""Every page names an icon that exists, and /favicon.ico (asked for by browsers and tools) is no 404."""

from __future__ import annotations

import re

from tests.ui.conftest import Browser


async def test_pages_link_an_icon_and_both_icon_urls_answer_without_signing_in(browser: Browser) -> None:
    page = await browser.get("/signin")
    match = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.text)
    assert match, "the page links no icon"
    for path in (match.group(1), "/favicon.ico"):
        icon = await browser.client.get(path)
        assert icon.status_code == 200, path
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.text.lstrip().startswith("<svg")
