"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright (its own browser download
cannot work offline). `scripts/install-browser` installs it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
#: set to a folder (e.g. docs/screenshots) to keep the screenshots the walk takes
SCREENSHOTS_ENV = "LEDGERBRIDGE_SCREENSHOTS"

# Every visible text node's colour against the first opaque background behind it (WCAG 2 contrast ratio).
CONTRAST_SCRIPT = """
() => {
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(",").map((s) => parseFloat(s));
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0.99) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    if (!text) continue;
    const el = node.parentElement;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === "hidden" || style.display === "none" || box.width <= 1 || box.height <= 1) continue;
    if (box.right < 0 || box.bottom < 0) continue;
    const fg = parse(style.color), bg = background(el);
    const a = luminance(fg), b = luminance(bg);
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push({ text: text.slice(0, 40), ratio: Math.round(ratio * 100) / 100 });
  }
  return low;
}
"""


async def low_contrast(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await page.evaluate(CONTRAST_SCRIPT)
    return found


async def overflows_horizontally(page: Page) -> bool:
    result: bool = await page.evaluate(
        "() => document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )
    return result


async def focus_outline(page: Page) -> str:
    style: str = await page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth; }"
    )
    return style


class Shots:
    """Saves screenshots under $LEDGERBRIDGE_SCREENSHOTS when it is set, else in the test's tmp dir."""

    def __init__(self, fallback: Path) -> None:
        configured = os.environ.get(SCREENSHOTS_ENV)
        self.folder = Path(configured) if configured else fallback
        self.folder.mkdir(parents=True, exist_ok=True)
        self.taken: list[Path] = []

    async def take(self, page: Page, name: str, *, full_page: bool = True) -> Path:
        path = self.folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path
