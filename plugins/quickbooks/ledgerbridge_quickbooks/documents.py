"""Where the user opens a QuickBooks document: the sandbox's company page, or QuickBooks Online's web app."""

from __future__ import annotations

from ledgerbridge import Outcome

from .client import QuickBooksClient
from .service import Service
from .settings import SANDBOX_API

APP_URL = "https://app.qbo.intuit.com/app"
SANDBOX_APP_URL = "https://app.sandbox.qbo.intuit.com/app"
#: what QuickBooks Online calls each entity in its own screens, and its web app's page for one
NAMES = {"SalesReceipt": "sales receipt", "RefundReceipt": "refund receipt", "Invoice": "invoice"}
PAGES = {"SalesReceipt": "salesreceipt", "RefundReceipt": "refundreceipt", "Invoice": "invoice"}


def document_url(service: Service, client: QuickBooksClient, entity: str, txn_id: str) -> str:
    sandbox = service.plugin.sandbox_url("quickbooks")
    if sandbox is not None and client.base.startswith(sandbox):
        return f"{sandbox}/companies/{client.realm_id}#{entity.lower()}-{txn_id}"
    app = SANDBOX_APP_URL if client.base.startswith(SANDBOX_API) else APP_URL
    return f"{app}/{PAGES.get(entity, entity.lower())}?txnId={txn_id}"


def outcome(
    service: Service, client: QuickBooksClient, entity: str, txn_id: str, number: str | None, note: str | None = None
) -> Outcome:
    return Outcome(
        document=f"QuickBooks {NAMES.get(entity, entity)} {number or txn_id}",
        url=document_url(service, client, entity, txn_id),
        note=note,
    )
