"""Links to the vendor sandboxes' own pages, so a new user can act as the CRM user and the QuickBooks user."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLink:
    name: str
    title: str
    url: str
    description: str


# The page each built-in sandbox offers a person; a sandbox not listed here is linked at its root.
KNOWN_PAGES: dict[str, tuple[str, str, str]] = {
    "crmconnect": ("CRM Connect sandbox", "/", "act as the CRM user: contacts, invoices and payments"),
    "quickbooks": ("QuickBooks sandbox", "/companies", "act as the QuickBooks user: companies and their books"),
}


def sandbox_links(sandbox_urls: dict[str, str]) -> list[SandboxLink]:
    links = []
    for name, base in sorted(sandbox_urls.items()):
        title, path, description = KNOWN_PAGES.get(name, (f"{name} sandbox", "/", "the sandbox's own pages"))
        links.append(SandboxLink(name=name, title=title, url=base.rstrip("/") + path, description=description))
    return links
