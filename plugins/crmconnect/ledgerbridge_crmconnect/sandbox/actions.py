"""What the CRM's user can do, one function per action: the control API and the HTML pages both call these,
so a form fires exactly the webhooks the control API does. Callers hold `engine.lock` and save afterwards."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledgerbridge_crmconnect.sandbox import contacts, invoices, payments
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import ApiError, not_found, now_iso, to_decimal

PAYMENT_MODES = invoices.PAYMENT_MODES


def find_contact(engine: SandboxEngine, contact_id: Any) -> Record:
    contact = engine.state.contacts.get(str(contact_id or ""))
    if contact is None:
        raise not_found("Contact")
    return contact


def find_invoice(engine: SandboxEngine, invoice_id: str) -> Record:
    invoice = engine.state.invoices.get(invoice_id)
    if invoice is None:
        raise not_found("Invoice")
    return invoice


def amount_of(body: dict[str, Any], name: str = "amount") -> Decimal | None:
    return to_decimal(body[name], name) if body.get(name) is not None else None


# -- contacts ------------------------------------------------------------------------------------------
def create_contact(engine: SandboxEngine, body: dict[str, Any]) -> Record:
    """{locationId, firstName?, lastName?, email?, phone?, …} → the contact (ContactCreate)."""
    fields = dict(body)
    location_id = str(fields.pop("locationId", ""))
    return contacts.create(engine, location_id, {"source": "crm user", **fields})


def update_contact(engine: SandboxEngine, contact_id: str, body: dict[str, Any]) -> Record:
    return contacts.update(engine, find_contact(engine, contact_id), body)


def delete_contact(engine: SandboxEngine, contact_id: str) -> None:
    contacts.delete(engine, find_contact(engine, contact_id))


# -- invoices ------------------------------------------------------------------------------------------
def create_invoice(engine: SandboxEngine, body: dict[str, Any]) -> Record:
    """{contactId, items[{name, qty, amount, taxes[{name, rate}]}], discount?, currency?, send?: bool, …}"""
    contact = find_contact(engine, body.get("contactId"))
    location = engine.location(contact["locationId"])
    currency = body.get("currency") or location["currency"]
    # Check the lines and discount before anything is written (creating takes an invoice number).
    invoices.parse_items(body.get("items"), currency)
    invoices.parse_discount(body.get("discount"))
    payload = {
        "name": body.get("name") or "Sandbox Invoice",
        "currency": currency,
        "items": body.get("items"),
        "discount": body.get("discount"),
        "contactDetails": invoices.contact_details(contact),
        "businessDetails": body.get("businessDetails") or {"name": location["name"]},
        "issueDate": body.get("issueDate") or now_iso()[:10],
        "dueDate": body.get("dueDate"),
        "invoiceNumber": body.get("invoiceNumber"),
        "title": body.get("title"),
        "liveMode": False,
    }
    invoice = invoices.create(engine, contact["locationId"], payload)
    if body.get("send"):
        invoices.send(engine, invoice)
    return invoice


def send_invoice(engine: SandboxEngine, invoice_id: str) -> Record:
    return invoices.send(engine, find_invoice(engine, invoice_id))


def edit_invoice(engine: SandboxEngine, invoice_id: str, body: dict[str, Any]) -> Record:
    """{items?, discount?, dueDate?, name?, …}: the user edits lines or the discount."""
    invoice = find_invoice(engine, invoice_id)
    changes = dict(body)
    if "items" in changes:
        changes["invoiceItems"] = changes.pop("items")
    return invoices.update(engine, invoice, changes)


def pay_invoice(engine: SandboxEngine, invoice_id: str, body: dict[str, Any]) -> Record:
    """{amount?: number (default: the amount due), mode?: cash|card|…, notes?}"""
    invoice = find_invoice(engine, invoice_id)
    mode = body.get("mode") or "card"
    if mode not in PAYMENT_MODES:
        raise ApiError(422, [f"mode must be one of the following values: {', '.join(PAYMENT_MODES)}"])
    return invoices.record_payment(engine, invoice, amount_of(body), mode, str(body.get("notes") or ""))


def void_invoice(engine: SandboxEngine, invoice_id: str) -> Record:
    return invoices.void(engine, find_invoice(engine, invoice_id))


def delete_invoice(engine: SandboxEngine, invoice_id: str) -> Record:
    return invoices.delete(engine, find_invoice(engine, invoice_id))


# -- payments ------------------------------------------------------------------------------------------
def _checkout(engine: SandboxEngine, body: dict[str, Any], kind: str, **extra: Any) -> dict[str, Record]:
    contact = find_contact(engine, body.get("contactId"))
    currency = body.get("currency") or engine.location(contact["locationId"])["currency"]
    items = invoices.parse_items(body.get("items"), currency)
    discount = invoices.parse_discount(body["discount"]) if body.get("discount") else None
    return payments.checkout(engine, contact, kind, items, discount=discount, currency=currency, **extra)


def order_form(engine: SandboxEngine, body: dict[str, Any]) -> dict[str, Record]:
    """{contactId, items, discount?, step?: "one_step"|"two_step", upsell?: bool}"""
    step = body.get("step") or "one_step"
    if step not in ("one_step", "two_step"):
        raise ApiError(400, "step must be one_step or two_step")
    sub_type = "upsell" if body.get("upsell") else f"{step}_order_form"
    return _checkout(engine, body, "order_form", sub_type=sub_type)


def membership(engine: SandboxEngine, body: dict[str, Any]) -> dict[str, Record]:
    return _checkout(engine, body, "membership")


def calendar(engine: SandboxEngine, body: dict[str, Any]) -> dict[str, Record]:
    """{contactId, items, subType?: "meeting"|"service"}"""
    sub_type = body.get("subType") or "meeting"
    if sub_type not in ("meeting", "service"):
        raise ApiError(400, "subType must be meeting or service")
    return _checkout(engine, body, "calendar", sub_type=sub_type)


def payment_link(engine: SandboxEngine, body: dict[str, Any]) -> dict[str, Record]:
    return _checkout(engine, body, "payment_link")


def start_subscription(engine: SandboxEngine, body: dict[str, Any]) -> dict[str, Record]:
    """{contactId, items, interval?: monthly|…, sourceType?: funnel|membership|…, subType?}: the first charge."""
    recurring = {"interval": body.get("interval") or "monthly", "intervalCount": int(body.get("intervalCount") or 1)}
    return _checkout(
        engine,
        body,
        "subscription",
        recurring=recurring,
        source_type=body.get("sourceType") or "funnel",
        sub_type=(body["subType"] or "") if "subType" in body else "one_step_order_form",
    )


def renew_subscription(engine: SandboxEngine, subscription_id: str) -> Record:
    sub = engine.state.subscriptions.get(subscription_id)
    if sub is None:
        raise not_found("Subscription")
    return payments.renew(engine, sub)


def refund(engine: SandboxEngine, transaction_id: str, body: dict[str, Any]) -> Record:
    """{amount?: number (default: everything not yet refunded)}"""
    txn = engine.state.transactions.get(transaction_id)
    if txn is None:
        raise not_found("Transaction")
    return payments.refund(engine, txn, amount_of(body))
