"""What the sandbox pages show, in a person's words: money, names, kinds of payment, the line after an action."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ledgerbridge_crmconnect.sandbox import invoices
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import parse_time

SYMBOLS = {"USD": "$", "CAD": "CA$", "AUD": "A$", "GBP": "£", "EUR": "€"}
SOURCE_KINDS = {
    ("funnel", "one_step_order_form"): "Order form",
    ("funnel", "two_step_order_form"): "Order form, two steps",
    ("funnel", "upsell"): "Order form upsell",
    ("membership", None): "Membership checkout",
    ("calendar", "meeting"): "Calendar booking: meeting",
    ("calendar", "service"): "Calendar booking: service",
    ("payment_link", None): "Payment link",
    ("website", "store"): "Online store",
}
STATUS_LABELS = {
    "draft": "Draft",
    "sent": "Sent",
    "partially_paid": "Partly paid",
    "paid": "Paid",
    "void": "Void",
    "payment_processing": "Processing",
    "succeeded": "Paid",
    "partially_refunded": "Partly refunded",
    "refunded": "Refunded",
}


def money(amount: Decimal, currency: str = "USD") -> str:
    symbol = SYMBOLS.get(currency)
    figure = f"{amount:,.2f}"
    return f"{symbol}{figure}" if symbol else f"{figure} {currency}"


def plain(amount: Decimal) -> str:
    """An amount as a form field holds it: 120.00 → "120", 99.5 → "99.50"."""
    return str(int(amount)) if amount == amount.to_integral_value() else f"{amount:.2f}"


def when(stamp: str | None) -> str:
    """One time format: "2026-11-30 14:05 UTC"."""
    moment = parse_time(stamp or "")
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def sentence(message: str) -> str:
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


def person(contact: Record) -> str:
    name = contact.get("name") or " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)
    email = contact.get("email")
    if name and email:
        return f"{name} <{email}>"
    return str(name or email or contact.get("phone") or contact.get("id", ""))


def customer(engine: SandboxEngine, contact_id: str, snapshot: Record | None = None) -> str:
    contact = engine.state.contacts.get(contact_id) or snapshot or {}
    name = contact.get("name") or " ".join(p for p in (contact.get("firstName"), contact.get("lastName")) if p)
    return str(name or contact.get("email") or "(deleted contact)")


def contact_with_email(engine: SandboxEngine, location_id: str, email: str) -> bool:
    wanted = email.strip().lower()
    return any(
        (c.get("email") or "").lower() == wanted for c in engine.state.in_location(engine.state.contacts, location_id)
    )


# -- payments ------------------------------------------------------------------------------------------
def payment_kind(engine: SandboxEngine, txn: Record) -> str:
    reason = txn.get("meta", {}).get("billingReason")
    if reason == "subscription_cycle":
        return "Subscription renewal"
    if reason == "subscription_create":
        return "Subscription: first charge"
    source = txn["entitySource"]
    if source["type"] == "invoice":
        invoice = engine.state.invoices.get(txn.get("invoiceId", ""))
        number = f" {invoice['invoiceNumber']}" if invoice else ""
        mode = txn.get("paymentMethod", {}).get("mode", "")
        return f"Invoice{number} payment" + (f" ({mode.replace('_', ' ')})" if mode else "")
    fallback = str(source["type"]).replace("_", " ").capitalize()
    return SOURCE_KINDS.get((source["type"], source.get("subType")), fallback)


def payment_row(engine: SandboxEngine, txn: Record) -> dict[str, Any]:
    left = txn["amount"] - txn["amountRefunded"]
    return {
        "id": txn["_id"],
        "when": when(txn["createdAt"]),
        "customer": customer(engine, txn["contactId"], txn.get("contactSnapshot")),
        "kind": payment_kind(engine, txn),
        "amount": money(txn["amount"], txn["currency"]),
        "refunded": money(txn["amountRefunded"], txn["currency"]),
        "left": money(left, txn["currency"]),
        "status": txn["status"],
        "status_label": STATUS_LABELS.get(txn["status"], txn["status"]),
        "refundable": left > 0,
    }


def last_payment_of(engine: SandboxEngine, invoice_id: str) -> Record | None:
    paid = [t for t in engine.state.transactions.values() if t.get("invoiceId") == invoice_id]
    return paid[-1] if paid else None


# -- invoices ------------------------------------------------------------------------------------------
def invoice_detail(invoice: Record) -> dict[str, Any]:
    figures = invoices.figures(invoice)
    currency = invoice["currency"]
    due = max(figures.total - invoice["amountPaid"], Decimal(0))
    details = invoice["contactDetails"]
    return {
        "id": invoice["_id"],
        "number": invoice["invoiceNumber"],
        "name": invoice["name"],
        "status": invoice["status"],
        "status_label": STATUS_LABELS.get(invoice["status"], invoice["status"]),
        "customer": details.get("name") or details.get("email") or "",
        "email": details.get("email") or "",
        "issued": invoice["issueDate"],
        "due_date": invoice["dueDate"],
        "subtotal": money(figures.sub_total, currency),
        "discount": money(figures.discount, currency),
        "has_discount": figures.discount > 0,
        "tax": money(figures.tax, currency),
        "total": money(figures.total, currency),
        "paid": money(invoice["amountPaid"], currency),
        "due": money(due, currency),
        "due_amount": due,
        "open": invoice["status"] not in ("paid", "void"),
        "voidable": invoice["status"] != "void" and invoice["amountPaid"] == 0,
        "lines": [
            {
                "name": item["name"],
                "qty": plain(item["qty"]),
                "price": money(item["amount"], currency),
                "tax": ", ".join(f"{t['name']}" for t in item["taxes"]),
            }
            for item in invoice["items"]
        ],
    }


def invoice_form_values(invoice: Record) -> dict[str, str]:
    """The edit form filled in with the invoice as it is."""
    values = {"name": invoice["name"], "dueDate": str(invoice.get("dueDate") or "")[:10]}
    for i, item in enumerate(invoice["items"]):
        values[f"line{i}_name"] = item["name"]
        values[f"line{i}_qty"] = plain(item["qty"])
        values[f"line{i}_price"] = plain(item["amount"])
        values[f"line{i}_tax"] = plain(item["taxes"][0]["rate"]) if item["taxes"] else ""
    discount = invoice["discount"]
    values["discount_type"] = discount["type"]
    values["discount_value"] = plain(discount["value"]) if discount["value"] else ""
    return values


# -- a location's home page ----------------------------------------------------------------------------
def location_overview(engine: SandboxEngine, location_id: str) -> dict[str, Any]:
    state = engine.state

    def newest(records: list[Record], key: str = "createdAt") -> list[Record]:
        return sorted(records, key=lambda r: str(r.get(key, "")), reverse=True)

    invoice_rows = [invoice_detail(i) for i in newest(state.in_location(state.invoices, location_id))]
    subscriptions = [
        {
            "id": s["_id"],
            "customer": customer(engine, s["contactId"], s.get("contactSnapshot")),
            "product": s.get("recurringProduct", {}).get("name", ""),
            "amount": money(s["amount"], s["currency"]),
            "interval": s["schedule"]["rrule"]["intervalType"].capitalize(),
            "renewals": s.get("renewals", 0),
            "active": s["status"] == "active",
        }
        for s in newest(state.in_location(state.subscriptions, location_id))
    ]
    return {
        "contacts": newest(state.in_location(state.contacts, location_id), "dateAdded"),
        "invoices": invoice_rows,
        "payments": [payment_row(engine, t) for t in newest(state.in_location(state.transactions, location_id))],
        "subscriptions": subscriptions,
    }


# -- what just happened --------------------------------------------------------------------------------
def flash(engine: SandboxEngine, done: str, ref: str) -> str | None:
    """The line shown after an action; only known actions, with names and amounts read from the state."""
    state = engine.state
    if done == "reset":
        return "The sandbox was reset: it holds no contacts, invoices or payments now."
    if done == "contact" and ref in state.contacts:
        return f"Contact {person(state.contacts[ref])} added."
    txn = state.transactions.get(ref)
    if done in ("payment", "renewal", "refund", "invoice-paid") and txn is not None:
        amount, who = money(txn["amount"], txn["currency"]), customer(engine, txn["contactId"], txn["contactSnapshot"])
        if done == "payment":
            return f"Payment of {amount} taken from {who} ({payment_kind(engine, txn).lower()})."
        if done == "renewal":
            return f"Renewal of {amount} charged to {who}."
        if done == "refund":
            return f"Refunded to {who}: {money(txn['amountRefunded'], txn['currency'])} of {amount} in all."
        return f"Payment of {amount} recorded from {who}."
    invoice = state.invoices.get(ref)
    if invoice is not None:
        number = invoice["invoiceNumber"]
        messages = {
            "invoice-draft": f"Invoice {number} saved as a draft.",
            "invoice-sent": f"Invoice {number} sent to {invoice['contactDetails'].get('email') or 'the customer'}.",
            "invoice-edited": f"Invoice {number} saved.",
            "invoice-voided": f"Invoice {number} voided.",
        }
        return messages.get(done)
    return None
