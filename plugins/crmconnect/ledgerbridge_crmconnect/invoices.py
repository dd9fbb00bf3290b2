"""Invoice webhooks become `InvoiceChange`s carrying the invoice's full state (fetched when partial)."""

from __future__ import annotations

from typing import Any

import msgspec
from ledgerbridge import InvoiceChange, InvoiceChangeKind, Skip

from ledgerbridge_crmconnect.client import CrmApiError, CrmClient
from ledgerbridge_crmconnect.wire import InvoiceWire, invoice_decoder, parse_datetime

CHANGE_KINDS: dict[str, InvoiceChangeKind] = {
    "InvoiceSent": "sent",
    "InvoiceUpdate": "updated",
    "InvoicePaid": "paid",
    "InvoicePartiallyPaid": "partially_paid",
    "InvoiceVoid": "voided",
    "InvoiceDelete": "deleted",
}


async def fetch_invoice(client: CrmClient, location_id: str, invoice_id: str) -> InvoiceWire | None:
    try:
        invoice: InvoiceWire = await client.get(
            f"/invoices/{invoice_id}", invoice_decoder, params={"altId": location_id, "altType": "location"}
        )
    except CrmApiError as exc:
        if exc.status == 404:
            return None
        raise
    return invoice


async def invoice_change(client: CrmClient, location_id: str, kind: str, payload: dict[str, Any]) -> InvoiceChange:
    change_kind = CHANGE_KINDS[kind]
    wire = msgspec.convert(payload, InvoiceWire, strict=False)
    if not wire._id:
        raise Skip(f"{kind} without an invoice id")
    if change_kind != "deleted" and not wire.is_complete:
        fetched = await fetch_invoice(client, location_id, wire._id)
        if fetched is None:
            raise Skip(f"invoice {wire._id} no longer exists")
        wire = fetched
    invoice = wire.to_domain(deleted=change_kind == "deleted")
    occurred_at = parse_datetime(payload.get("timestamp") or wire.updatedAt or wire.createdAt)
    return InvoiceChange(kind=change_kind, invoice=invoice, occurred_at=occurred_at)
