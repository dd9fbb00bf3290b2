"""Invoices: create, get (with totalSummary), list, update, send, record payment, void, delete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import payments, totals
from ledgerbridge_crmconnect.sandbox.auth import CONTACTS_VERSION, Ctx, api
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import (
    ApiError,
    JSONResponse,
    ghl_id,
    int_param,
    not_found,
    now_iso,
    object_id,
    parse_time,
    to_decimal,
)

STATUSES = ("draft", "sent", "payment_processing", "paid", "void", "partially_paid")
PAYMENT_MODES = ("cash", "card", "cheque", "bank_transfer", "other")
CREATE_REQUIRED = (
    "altId",
    "altType",
    "name",
    "businessDetails",
    "currency",
    "items",
    "discount",
    "contactDetails",
    "issueDate",
    "sentTo",
    "liveMode",
)
UPDATE_REQUIRED = ("altId", "altType", "name", "currency", "invoiceItems", "issueDate", "dueDate")
UNKNOWN_INVOICE = "Unable to find an invoice with the given invoice id"


# -- parsing -----------------------------------------------------------------------------------------
def parse_items(raw: Any, currency: str, field: str = "items") -> list[Record]:
    if not isinstance(raw, list) or not raw:
        raise ApiError(422, [f"{field} must contain at least 1 elements"])
    items: list[Record] = []
    for index, item in enumerate(raw):
        where = f"{field}.{index}"
        if not isinstance(item, dict):
            raise ApiError(422, [f"{where} must be an object"])
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise ApiError(422, [f"{where}.name should not be empty"])
        qty, amount = to_decimal(item.get("qty"), f"{where}.qty"), to_decimal(item.get("amount"), f"{where}.amount")
        if qty <= 0 or amount < 0:
            raise ApiError(422, [f"{where}.qty must be positive and {where}.amount must not be negative"])
        taxes = []
        for t_index, tax in enumerate(item.get("taxes") or []):
            if not isinstance(tax, dict) or not isinstance(tax.get("name"), str):
                raise ApiError(422, [f"{where}.taxes.{t_index}.name must be a string"])
            rate = to_decimal(tax.get("rate"), f"{where}.taxes.{t_index}.rate")
            taxes.append(
                {
                    "_id": str(tax.get("_id") or object_id()),
                    "name": tax["name"],
                    "rate": rate,
                    "calculation": tax.get("calculation") or "exclusive",
                }
            )
            if taxes[-1]["calculation"] != "exclusive":
                raise ApiError(
                    422, [f"{where}.taxes.{t_index}.calculation must be one of the following values: exclusive"]
                )
        parsed: Record = {
            "_id": str(item.get("_id") or ghl_id()),
            "name": item["name"],
            "currency": item.get("currency") or currency,
            "qty": qty,
            "amount": amount,
            "taxes": taxes,
            "type": item.get("type") or "one_time",
        }
        for optional in ("description", "productId", "priceId"):
            if isinstance(item.get(optional), str):
                parsed[optional] = item[optional]
        items.append(parsed)
    return items


def parse_discount(raw: Any) -> Record:
    if raw is None:
        return {"type": "percentage", "value": Decimal(0)}
    if not isinstance(raw, dict) or raw.get("type") not in ("percentage", "fixed"):
        raise ApiError(422, ["discount.type must be one of the following values: percentage, fixed"])
    value = to_decimal(raw.get("value", 0), "discount.value")
    if value < 0 or (raw["type"] == "percentage" and value > 100):
        raise ApiError(422, ["discount.value is out of range"])
    discount: Record = {"type": raw["type"], "value": value}
    if isinstance(raw.get("validOnProductIds"), list):
        discount["validOnProductIds"] = [str(p) for p in raw["validOnProductIds"]]
    return discount


def _missing(body: dict[str, Any], names: tuple[str, ...]) -> None:
    problems = [f"{name} should not be empty" for name in names if body.get(name) in (None, "")]
    if problems:
        raise ApiError(422, problems)


def _contact_details(raw: Any) -> Record:
    if not isinstance(raw, dict):
        raise ApiError(422, ["contactDetails must be an object"])
    problems = [
        f"contactDetails.{k} must be a string"
        for k in ("id", "name", "phoneNo", "email")
        if not isinstance(raw.get(k), str)
    ]
    if problems:
        raise ApiError(422, problems)
    return dict(raw)


# -- rendering ---------------------------------------------------------------------------------------
def figures(invoice: Record) -> totals.Totals:
    return totals.compute(invoice["items"], invoice["discount"])


def render(invoice: Record, for_webhook: bool = False) -> Record:
    t = figures(invoice)
    number: Any = invoice["invoiceNumber"]
    if not for_webhook and str(number).isdigit():
        number = int(number)  # a number in REST responses, a string in webhooks (see the reference quirks)
    out: Record = {
        "_id": invoice["_id"],
        "status": invoice["status"],
        "liveMode": invoice["liveMode"],
        "amountPaid": invoice["amountPaid"],
        "altId": invoice["locationId"],
        "altType": "location",
        "name": invoice["name"],
        "businessDetails": invoice["businessDetails"],
        "invoiceNumber": number,
        "currency": invoice["currency"],
        "contactDetails": invoice["contactDetails"],
        "issueDate": invoice["issueDate"],
        "dueDate": invoice["dueDate"],
        "discount": {k: v for k, v in invoice["discount"].items()},
        "invoiceItems": [
            {**{k: v for k, v in item.items()}, "taxes": [dict(tax) for tax in item["taxes"]]}
            for item in invoice["items"]
        ],
        "total": t.total,
        "title": invoice["title"],
        "amountDue": max(t.total - invoice["amountPaid"], Decimal(0)),
        "createdAt": invoice["createdAt"],
        "updatedAt": invoice["updatedAt"],
        "totalSummary": {"subTotal": t.sub_total, "discount": t.discount, "tax": t.tax},
        "sentTo": invoice["sentTo"],
        "automaticTaxesEnabled": False,
    }
    if invoice.get("termsNotes"):
        out["termsNotes"] = invoice["termsNotes"]
    return out


# -- domain ------------------------------------------------------------------------------------------
def create(engine: SandboxEngine, location_id: str, body: dict[str, Any]) -> Record:
    engine.location(location_id)
    currency = body["currency"]
    stamp = now_iso()
    number = body.get("invoiceNumber") or str(engine.state.next_invoice_number(location_id))
    invoice: Record = {
        "_id": object_id(),
        "locationId": location_id,
        "status": "draft",
        "liveMode": bool(body.get("liveMode", False)),
        "name": body["name"],
        "title": body.get("title") or "INVOICE",
        "currency": currency,
        "businessDetails": body.get("businessDetails") or {},
        "contactDetails": _contact_details(body.get("contactDetails")),
        "invoiceNumber": str(number),
        "issueDate": body["issueDate"],
        "dueDate": body.get("dueDate") or body["issueDate"],
        "discount": parse_discount(body.get("discount")),
        "items": parse_items(body.get("items"), currency),
        "sentTo": body.get("sentTo") or {"email": [body["contactDetails"].get("email")]},
        "termsNotes": body.get("termsNotes"),
        "amountPaid": Decimal(0),
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    engine.state.invoices[invoice["_id"]] = invoice
    engine.emit("InvoiceCreate", location_id, render(invoice, for_webhook=True))
    return invoice


def find(engine: SandboxEngine, location_id: str, invoice_id: str, missing: ApiError | None = None) -> Record:
    invoice = engine.state.invoices.get(invoice_id)
    if invoice is None or invoice["locationId"] != location_id:
        raise missing or not_found("Invoice")
    return invoice


def update(engine: SandboxEngine, invoice: Record, body: dict[str, Any]) -> Record:
    if invoice["status"] in ("paid", "void"):
        raise ApiError(400, f"Cannot update an invoice in {invoice['status']} status")
    currency = body.get("currency") or invoice["currency"]
    if "invoiceItems" in body:
        invoice["items"] = parse_items(body["invoiceItems"], currency, "invoiceItems")
    if "discount" in body:
        invoice["discount"] = parse_discount(body["discount"])
    if "contactDetails" in body:
        invoice["contactDetails"] = _contact_details(body["contactDetails"])
    for name in ("name", "title", "currency", "issueDate", "dueDate", "termsNotes", "businessDetails", "liveMode"):
        if name in body:
            invoice[name] = body[name]
    if body.get("invoiceNumber"):
        invoice["invoiceNumber"] = str(body["invoiceNumber"])
    if invoice["amountPaid"] > 0:  # edited lines can settle or unsettle a partly paid invoice
        invoice["status"] = "paid" if invoice["amountPaid"] >= figures(invoice).total else "partially_paid"
    invoice["updatedAt"] = now_iso()
    engine.emit("InvoiceUpdate", invoice["locationId"], render(invoice, for_webhook=True))
    return invoice


def send(engine: SandboxEngine, invoice: Record) -> Record:
    if invoice["status"] in ("paid", "void"):
        raise ApiError(400, f"Invoice is already {invoice['status']}")
    if invoice["status"] == "draft":
        invoice["status"] = "sent"
    invoice["sentAt"] = invoice["updatedAt"] = now_iso()
    engine.emit("InvoiceSent", invoice["locationId"], render(invoice, for_webhook=True))
    return invoice


def record_payment(
    engine: SandboxEngine, invoice: Record, amount: Decimal | None, mode: str, notes: str = ""
) -> Record:
    if invoice["status"] in ("paid", "void"):
        raise ApiError(400, f"Invoice is already {invoice['status']}")
    due = figures(invoice).total - invoice["amountPaid"]
    amount = due if amount is None else amount
    if amount <= 0 or amount > due:
        raise ApiError(400, f"Amount must be greater than 0 and less than or equal to the due amount {due}")
    invoice["amountPaid"] += amount
    invoice["status"] = "paid" if invoice["amountPaid"] >= figures(invoice).total else "partially_paid"
    invoice["updatedAt"] = now_iso()
    payments.record_invoice_payment(engine, invoice, amount, mode, notes)
    event = "InvoicePaid" if invoice["status"] == "paid" else "InvoicePartiallyPaid"
    engine.emit(event, invoice["locationId"], render(invoice, for_webhook=True))
    return invoice


def void(engine: SandboxEngine, invoice: Record) -> Record:
    if invoice["status"] == "void":
        raise ApiError(400, "Invoice is already void")
    if invoice["amountPaid"] > 0:
        raise ApiError(400, "An invoice with recorded payments cannot be voided")
    invoice["status"] = "void"
    invoice["updatedAt"] = now_iso()
    engine.emit("InvoiceVoid", invoice["locationId"], render(invoice, for_webhook=True))
    return invoice


def delete(engine: SandboxEngine, invoice: Record) -> Record:
    if invoice["amountPaid"] > 0:
        raise ApiError(400, "An invoice with recorded payments cannot be deleted")
    del engine.state.invoices[invoice["_id"]]
    # InvoiceDelete.md: the deleted invoice with status "delete"
    engine.emit("InvoiceDelete", invoice["locationId"], {**render(invoice, for_webhook=True), "status": "delete"})
    return invoice


# -- HTTP --------------------------------------------------------------------------------------------
def _alt(ctx: Ctx, source: Any) -> str:
    if source.get("altType") != "location":
        raise ApiError(422, ["altType must be one of the following values: location"])
    return ctx.require_location(source.get("altId"), "altId")


@api(CONTACTS_VERSION)
def create_invoice(request: Request, ctx: Ctx) -> Response:
    _missing(ctx.body, CREATE_REQUIRED)
    location_id = _alt(ctx, ctx.body)
    return JSONResponse(render(create(ctx.engine, location_id, ctx.body)))


@api(CONTACTS_VERSION)
def get_invoice(request: Request, ctx: Ctx) -> Response:
    location_id = _alt(ctx, request.query_params)
    return JSONResponse(render(find(ctx.engine, location_id, request.path_params["invoiceId"])))


@api(CONTACTS_VERSION)
def list_invoices(request: Request, ctx: Ctx) -> Response:
    q = request.query_params
    location_id = _alt(ctx, q)
    _missing(dict(q), ("limit", "offset"))
    limit, offset = int_param(q.get("limit"), "limit", 10), int_param(q.get("offset"), "offset", 0)
    found = ctx.engine.state.in_location(ctx.engine.state.invoices, location_id)
    if q.get("status"):
        found = [i for i in found if i["status"] == q["status"]]
    if q.get("contactId"):
        found = [i for i in found if i["contactDetails"].get("id") == q["contactId"]]
    if q.get("search"):
        needle = q["search"].lower()
        found = [
            i
            for i in found
            if needle in f"{i['name']} {i['invoiceNumber']} {i['contactDetails'].get('name', '')}".lower()
        ]
    start, end = parse_time(q.get("startAt", "")), parse_time(q.get("endAt", ""))
    if start or end:
        found = [
            i
            for i in found
            if (issued := parse_time(i["issueDate"])) is not None
            and (start is None or issued >= start)
            and (end is None or issued <= end)
        ]
    found.sort(key=lambda i: (i["issueDate"], i["createdAt"]), reverse=q.get("sortOrder") != "ascend")
    return JSONResponse({"invoices": [render(i) for i in found[offset : offset + limit]], "total": len(found)})


@api(CONTACTS_VERSION)
def update_invoice(request: Request, ctx: Ctx) -> Response:
    _missing(ctx.body, UPDATE_REQUIRED)
    location_id = _alt(ctx, ctx.body)
    invoice = find(ctx.engine, location_id, request.path_params["invoiceId"])
    return JSONResponse(render(update(ctx.engine, invoice, ctx.body)))


@api(CONTACTS_VERSION)
def send_invoice(request: Request, ctx: Ctx) -> Response:
    _missing(ctx.body, ("altId", "altType", "userId", "action", "liveMode"))
    location_id = _alt(ctx, ctx.body)
    if ctx.body["action"] not in ("sms_and_email", "send_manually", "email", "sms"):
        raise ApiError(422, ["action must be one of the following values: sms_and_email, send_manually, email, sms"])
    invoice = send(ctx.engine, find(ctx.engine, location_id, request.path_params["invoiceId"]))
    return JSONResponse({"invoice": render(invoice), "smsData": {}, "emailData": {}})


@api(CONTACTS_VERSION)
def record_invoice_payment(request: Request, ctx: Ctx) -> Response:
    _missing(ctx.body, ("altId", "altType", "mode"))
    location_id = _alt(ctx, ctx.body)
    if ctx.body["mode"] not in PAYMENT_MODES:
        raise ApiError(422, [f"mode must be one of the following values: {', '.join(PAYMENT_MODES)}"])
    amount = to_decimal(ctx.body["amount"], "amount") if ctx.body.get("amount") is not None else None
    invoice = find(ctx.engine, location_id, request.path_params["invoiceId"])
    record_payment(ctx.engine, invoice, amount, ctx.body["mode"], str(ctx.body.get("notes") or ""))
    return JSONResponse({"success": True, "invoice": render(invoice)})


@api(CONTACTS_VERSION)
def void_invoice(request: Request, ctx: Ctx) -> Response:
    location_id = _alt(ctx, ctx.body)
    invoice = find(ctx.engine, location_id, request.path_params["invoiceId"], ApiError(400, UNKNOWN_INVOICE))
    return JSONResponse(render(void(ctx.engine, invoice)))


@api(CONTACTS_VERSION)
def delete_invoice(request: Request, ctx: Ctx) -> Response:
    location_id = _alt(ctx, request.query_params)
    invoice = find(ctx.engine, location_id, request.path_params["invoiceId"], ApiError(400, UNKNOWN_INVOICE))
    return JSONResponse(render(delete(ctx.engine, invoice)))


routes = [
    Route("/invoices/", create_invoice, methods=["POST"]),
    Route("/invoices/", list_invoices, methods=["GET"]),
    Route("/invoices/{invoiceId}/send", send_invoice, methods=["POST"]),
    Route("/invoices/{invoiceId}/record-payment", record_invoice_payment, methods=["POST"]),
    Route("/invoices/{invoiceId}/void", void_invoice, methods=["POST"]),
    Route("/invoices/{invoiceId}", get_invoice, methods=["GET"]),
    Route("/invoices/{invoiceId}", update_invoice, methods=["PUT"]),
    Route("/invoices/{invoiceId}", delete_invoice, methods=["DELETE"]),
]


def contact_details(contact: Record) -> Record:
    """contactDetails as HighLevel copies them from a contact onto an invoice."""
    details: Record = {
        "id": contact["id"],
        "name": contact.get("name") or "",
        "email": contact.get("email") or "",
        "phoneNo": contact.get("phone") or "",
    }
    if contact.get("companyName"):
        details["companyName"] = contact["companyName"]
    address = {
        k: contact[s]
        for k, s in (
            ("addressLine1", "address1"),
            ("city", "city"),
            ("state", "state"),
            ("postalCode", "postalCode"),
            ("countryCode", "country"),
        )
        if contact.get(s)
    }
    if address:
        details["address"] = address
    return details
