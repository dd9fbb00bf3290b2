"""Xero webhooks: the signature (base64 HMAC-SHA256 of the raw body with the webhook key) is checked first —
a wrong one is a 401 with no body, which is also how the intent-to-receive check is passed. Events are stored
as notifications and handled by `handle` with the pipeline's retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from ledgerbridge import DeliveryContext, Notification, PluginContext
from ledgerbridge.web import parse_json, read_body
from starlette.requests import Request
from starlette.responses import Response

from . import contacts_import, facts, wire

if TYPE_CHECKING:
    from .plugin import XeroPlugin


def signature(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def receiver(plugin_context: PluginContext, plugin: XeroPlugin) -> Any:
    async def webhook(request: Request) -> Response:
        raw = await read_body(request)
        credentials = plugin.credentials
        key = credentials.webhook_key if credentials else ""
        sent = request.headers.get("x-xero-signature", "")
        if not key or not hmac.compare_digest(signature(key, raw), sent):
            return Response(status_code=401)
        body = parse_json(raw)
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            return Response(status_code=400)
        for event in events:
            if not isinstance(event, dict) or event.get("eventCategory") not in ("CONTACT", "INVOICE"):
                continue
            ctx = await plugin_context.account_for_external_id(str(event.get("tenantId", "")).lower())
            if ctx is None:
                plugin_context.log.info("Xero event for an unconnected tenant %s", event.get("tenantId"))
                continue
            category, resource = event["eventCategory"], str(event.get("resourceId", ""))
            await ctx.notify(
                f"{category}.{event.get('eventType')}",
                event,
                external_id=f"{category}:{resource}:{event.get('eventDateUtc')}:{event.get('eventType')}",
                object_key=f"{category.lower()}:{resource}",
            )
        return Response(status_code=200)

    return webhook


async def handle(ctx: DeliveryContext, plugin: XeroPlugin, notification: Notification) -> None:
    event = notification.payload
    category, resource = event.get("eventCategory"), str(event.get("resourceId", ""))
    client = await plugin.client(ctx)
    if category == "CONTACT":
        found = wire.contacts.decode(await client.get(f"/Contacts/{resource}")).Contacts
        kind = "created" if event.get("eventType") == "CREATE" else "updated"
        for contact in found:
            await contacts_import.publish(ctx, contact, kind)
    elif category == "INVOICE":
        found_invoices = wire.invoices.decode(await client.get(f"/Invoices/{resource}")).Invoices
        for invoice in found_invoices:
            await facts.invoice_changed(ctx, client, invoice)
