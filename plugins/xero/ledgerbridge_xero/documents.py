"""Where the user opens a Xero document: the sandbox's organisation page, or Xero's web app."""

from __future__ import annotations

from ledgerbridge import Outcome

from .client import XeroClient

APP_URL = "https://go.xero.com"
PAGES = {
    "invoice": "/AccountsReceivable/View.aspx?InvoiceID={id}",
    "bank_transaction": "/Bank/ViewTransaction.aspx?bankTransactionID={id}",
}
NAMES = {"invoice": "invoice", "bank_transaction": "received money"}


def document_url(sandbox_url: str | None, client: XeroClient, kind: str, xero_id: str) -> str:
    if sandbox_url is not None and client.api_url.startswith(sandbox_url):
        return f"{sandbox_url}/organisations/{client.tenant_id}#{kind}-{xero_id}"
    return APP_URL + PAGES[kind].format(id=xero_id)


def outcome(
    sandbox_url: str | None, client: XeroClient, kind: str, xero_id: str, number: str | None, note: str | None = None
) -> Outcome:
    name = f"Xero {NAMES[kind]}" + (f" {number}" if number else "")
    return Outcome(document=name, url=document_url(sandbox_url, client, kind, xero_id), note=note)
