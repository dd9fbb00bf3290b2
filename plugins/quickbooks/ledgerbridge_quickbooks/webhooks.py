"""QuickBooks webhooks: verify `intuit-signature`, accept legacy and CloudEvents bodies, persist, answer 200.

Intuit holds later events until the current one is acknowledged, so a correctly signed event that cannot be
used (unknown company, malformed entry) is accepted and quarantined (logged), never refused. The stored
notification comes back through `on_notification`, where the entity is fetched and turned into events,
unless it is the echo of a write of ours (echoes.py): that one costs no call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from ledgerbridge import AccountContext, DeliveryContext, Notification, PluginContext
from ledgerbridge.web import read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from . import contacts_import, echoes, errors, first_invoice, wire
from .service import Service

logger = logging.getLogger("ledgerbridge.plugins.quickbooks.webhooks")
KIND = "qbo.change"
ENTITIES = {"customer": "Customer", "invoice": "Invoice", "payment": "Payment"}
OPERATIONS = {"created": "Create", "updated": "Update", "deleted": "Delete", "merged": "Merge", "voided": "Void",
              "emailed": "Emailed"}  # fmt: skip


@dataclass(frozen=True)
class Change:
    realm_id: str
    entity: str
    entity_id: str
    operation: str
    event_id: str
    deleted_id: str | None = None
    updated: str | None = None  # the entity's LastUpdatedTime (legacy `lastUpdated`, CloudEvents `time`)


def sign(verifier_token: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def verify(verifier_token: str, body: bytes, signature: str | None) -> bool:
    return bool(verifier_token and signature) and hmac.compare_digest(
        sign(verifier_token, body), (signature or "").strip()
    )


def parse(body: bytes) -> tuple[list[Change], list[Any]]:
    """(usable changes, unusable entries). Raises ValueError when the body is not JSON this server can read
    (malformed, not UTF-8, nested too deep, numbers too long): the caller quarantines it whole."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise ValueError("the body is nested too deeply") from None
    changes: list[Change] = []
    rejects: list[Any] = []
    if isinstance(data, dict) and isinstance(data.get("eventNotifications"), list):
        for notification in data["eventNotifications"]:
            entities = _entities(notification)
            if entities is None:
                rejects.append(notification)
                continue
            realm = _text(notification["realmId"])
            for entity in entities:
                change = _legacy_change(realm, entity)
                if change is None:
                    rejects.append(entity)
                else:
                    changes.append(change)
    elif isinstance(data, list):
        for event in data:
            change = _cloud_event(event)
            if change is None:
                rejects.append(event)
            else:
                changes.append(change)
    else:
        rejects.append(data)
    return changes, rejects


def _text(value: Any) -> str | None:
    """An identifier as text: a non-empty string or a whole number, nothing else (no lists, no floats)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value and len(value) <= 200 and value.isprintable():
        return value
    return None


def _entities(notification: Any) -> list[Any] | None:
    if not isinstance(notification, dict) or _text(notification.get("realmId")) is None:
        return None
    event = notification.get("dataChangeEvent")
    entities = event.get("entities") if isinstance(event, dict) else None
    return entities if isinstance(entities, list) else None


def _legacy_change(realm: str | None, entity: Any) -> Change | None:
    if realm is None or not isinstance(entity, dict):
        return None
    name, ident, operation = _text(entity.get("name")), _text(entity.get("id")), _text(entity.get("operation"))
    if name is None or ident is None or operation is None:
        return None
    updated = entity.get("lastUpdated", "")
    event_id = f"{realm}:{name}:{ident}:{operation}:{updated if isinstance(updated, str) else ''}"
    deleted = _text(entity.get("deletedId"))
    return Change(realm, name, ident, operation, event_id, deleted, _text(updated))


def _cloud_event(event: Any) -> Change | None:
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    parts = kind.split(".") if isinstance(kind, str) else []
    realm, ident = _text(event.get("intuitaccountid")), _text(event.get("intuitentityid"))
    event_id = _text(event.get("id"))
    if len(parts) < 3 or parts[0] != "qbo" or not parts[1] or not realm or not ident or not event_id:
        return None
    raw = event.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    deleted = _text(data.get("deletedid") or data.get("deletedId"))
    name = ENTITIES.get(parts[1].lower(), parts[1][:1].upper() + parts[1][1:])
    operation = OPERATIONS.get(parts[2].lower(), parts[2].title())
    return Change(realm, name, ident, operation, event_id, deleted, _text(event.get("time")))


def receiver(plugin: PluginContext, service: Service) -> Any:
    async def receive(request: Request) -> Response:
        body = await read_body(request)
        credentials = service.credentials
        if credentials is None or not verify(credentials.verifier_token, body, request.headers.get("intuit-signature")):
            return JSONResponse({"error": "invalid intuit-signature"}, 401)
        try:
            changes, rejects = parse(body)
        except ValueError:  # includes UnicodeDecodeError; Intuit must not be refused (it would hold later events)
            logger.warning("quarantined a signed QuickBooks webhook whose body is not JSON (%d bytes)", len(body))
            return JSONResponse({"accepted": 0, "quarantined": 1})
        for reject in rejects:
            await _quarantine_entry(plugin, reject)
        accepted = quarantined = 0
        for change in changes:
            account = await plugin.account_for_external_id(change.realm_id)
            if account is None:
                quarantined += 1
                logger.warning("quarantined a QuickBooks webhook for unknown company %s", change.realm_id)
                continue
            if change.entity not in ENTITIES.values():
                continue  # vendors, bills…: nothing this integration follows
            await account.notify(KIND, _payload(change), external_id=change.event_id,
                                 object_key=f"{change.entity}:{change.entity_id}")  # fmt: skip
            accepted += 1
        return JSONResponse({"accepted": accepted, "quarantined": quarantined + len(rejects)})

    return receive


async def _quarantine_entry(plugin: PluginContext, entry: Any) -> None:
    """Log an unusable signed entry to its company's account when it names one, else to the server log."""
    realm = _text(entry.get("realmId") or entry.get("intuitaccountid")) if isinstance(entry, dict) else None
    account = await plugin.account_for_external_id(realm) if realm else None
    if account is None:
        logger.warning("quarantined an unusable QuickBooks webhook entry: %s", _shown(entry))
        return
    await _quarantine(account, "unusable QuickBooks webhook entry", entry)


def _payload(change: Change) -> dict[str, Any]:
    return {"realm_id": change.realm_id, "entity": change.entity, "id": change.entity_id,
            "operation": change.operation, "deleted_id": change.deleted_id, "updated": change.updated}  # fmt: skip


async def handle(ctx: DeliveryContext, service: Service, notification: Notification) -> None:
    """Fetch what changed and publish ContactSync / InvoicePaid."""
    payload = notification.payload if isinstance(notification.payload, dict) else {}
    entity, ident, operation = payload.get("entity"), str(payload.get("id", "")), payload.get("operation")
    if notification.kind != KIND or not ident:
        await _quarantine(ctx, "unusable QuickBooks notification", payload)
        return
    connection = await service.tokens.connection(ctx)
    if payload.get("realm_id") != connection.realm_id:
        await _quarantine(ctx, "QuickBooks notification for a company no longer connected", payload)
        return
    stamp = payload.get("updated") if isinstance(payload.get("updated"), str) else None
    if entity in ENTITIES.values() and await echoes.is_echo(ctx, str(entity), ident, stamp):
        return  # about our own write: nothing new, nothing to read (see echoes.py)
    client = await service.client(ctx)
    if entity == "Customer":
        try:
            customer = await client.read(wire.Customer, ident)
        except errors.NotFoundError:
            return
        if operation == "Merge" and payload.get("deleted_id"):
            await contacts_import.publish_customer(ctx, customer)
            await _publish_merge(ctx, customer, str(payload["deleted_id"]))
        else:
            await contacts_import.publish_customer(ctx, customer, "merged" if operation == "Merge" else None)
    elif entity == "Invoice":
        await first_invoice.check_invoices(ctx, client, [ident])
    elif entity == "Payment":
        try:
            payment = await client.read(wire.Payment, ident)
        except errors.NotFoundError:
            return
        await first_invoice.check_invoices(ctx, client, payment.invoice_ids())


async def _publish_merge(ctx: AccountContext, survivor: wire.Customer, deleted_id: str) -> None:
    from ledgerbridge import ContactSync

    from . import customers

    event = ContactSync(kind="merged", contact=customers.to_contact(survivor), source_id=deleted_id,
                        merged_into=survivor.Id)  # fmt: skip
    await ctx.publish(event, external_id=f"customer-merge:{deleted_id}:{survivor.Id}")


async def _quarantine(ctx: AccountContext, message: str, payload: Any) -> None:
    await ctx.log(f"quarantined: {message}", level="warning", payload=_shown(payload))


def _shown(value: Any) -> str:
    """At most 500 characters of a value for a log, whatever its shape."""
    try:
        return repr(value)[:500]
    except RecursionError:
        return "(a value nested too deeply to show)"
