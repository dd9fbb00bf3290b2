"""The control API (`/control/…`): act as the Xero user — add an organisation, create a contact or an
invoice, pay an invoice, read the books — and run the webhook intent-to-receive check. Not part of Xero."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .books import Organisation, render
from .engine import Fault, Sandbox
from .errors import NotFound, ValidationFailed, element_with_errors, validation_body

TABLES = {
    "contacts": "contacts",
    "invoices": "invoices",
    "payments": "payments",
    "bank-transactions": "bank_transactions",
    "accounts": "accounts",
    "tax-rates": "tax_rates",
    "items": "items",
}


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    data = json.loads(raw, parse_float=Decimal)
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _organisation(request: Request) -> Organisation:
    sandbox: Sandbox = request.app.state.sandbox
    found = sandbox.organisation(request.path_params["tenant"])
    if found is None:
        raise NotFound(request.path_params["tenant"])
    return found


async def _act(request: Request, action: Any) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    try:
        body = await _json(request)
        organisation = _organisation(request)
        result = action(organisation, body)
    except ValueError as exc:
        return JSONResponse({"error": f"bad JSON body: {exc}"}, 400)
    except NotFound as exc:
        return JSONResponse({"error": f"not found: {exc}"}, 404)
    except ValidationFailed as failure:
        organisation.events.clear()
        return JSONResponse(validation_body([element_with_errors(failure)]), 400)
    sandbox.flush_events(organisation)
    return JSONResponse(render(result))


async def organisations(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    if request.method == "POST":
        try:
            body = await _json(request)
        except ValueError as exc:
            return JSONResponse({"error": f"bad JSON body: {exc}"}, 400)
        name, currency = body.get("name"), body.get("currency", "USD")
        if not isinstance(name, str) or not name.strip() or not isinstance(currency, str) or len(currency) != 3:
            return JSONResponse({"error": "name (text) and currency (ISO code) are required"}, 400)
        made = sandbox.add_organisation(name, currency=currency, country=str(body.get("country", "US")))
        return JSONResponse({"tenantId": made.tenant_id, "name": made.name}, 201)
    return JSONResponse(
        [{"tenantId": o.tenant_id, "name": o.name, "currency": o.currency} for o in sandbox.organisations.values()]
    )


async def create_contact(request: Request) -> Response:
    return await _act(request, lambda org, body: org.save_contact({k: v for k, v in body.items() if k != "ContactID"}))


async def update_contact(request: Request) -> Response:
    return await _act(request, lambda org, body: org.save_contact({**body, "ContactID": request.path_params["id"]}))


async def create_invoice(request: Request) -> Response:
    def create(org: Organisation, body: dict[str, Any]) -> dict[str, Any]:
        defaults = {"Type": "ACCREC", "Status": "AUTHORISED", "DueDate": str(org.today())}
        return org.save_invoice({**defaults, **body})

    return await _act(request, create)


async def pay_invoice(request: Request) -> Response:
    def pay(org: Organisation, body: dict[str, Any]) -> dict[str, Any]:
        invoice = org.invoice(request.path_params["id"])
        amount = body.get("Amount", invoice["AmountDue"])
        return org.save_payment(
            {
                "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                "Amount": amount,
                "Account": {"Code": body.get("AccountCode", "090")},
                "Date": body.get("Date"),
                "Reference": body.get("Reference", "paid in Xero"),
            }
        )

    return await _act(request, pay)


async def table(request: Request) -> Response:
    try:
        organisation = _organisation(request)
    except NotFound:
        return JSONResponse({"error": "no such organisation"}, 404)
    name = TABLES.get(request.path_params["table"])
    if name is None:
        return JSONResponse({"error": f"tables: {', '.join(TABLES)}"}, 404)
    return JSONResponse([render(d) for d in getattr(organisation, name).values()])


async def intent_to_receive(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    subscription = sandbox.dispatcher.subscriptions.get(request.path_params["client_id"])
    if subscription is None:
        return JSONResponse({"error": "no app with a webhook has that client id"}, 404)
    ok = await sandbox.dispatcher.intent_to_receive(subscription)
    return JSONResponse({"status": subscription.status, "ok": ok})


async def faults(request: Request) -> Response:
    """Inject faults: {"status": 503|500|429, "count": n, "retry_after": s, "after_commit": bool}."""
    sandbox: Sandbox = request.app.state.sandbox
    try:
        body = await _json(request)
        status, count = int(body.get("status", 503)), int(body.get("count", 1))
        retry_after, after_commit = int(body.get("retry_after", 1)), bool(body.get("after_commit", False))
    except (ValueError, TypeError) as exc:
        return JSONResponse({"error": f"bad fault: {exc}"}, 400)
    if status not in (429, 500, 502, 503, 504) or count < 1 or retry_after < 0:
        return JSONResponse({"error": "status must be 429 or 5xx, count at least 1"}, 400)
    sandbox.faults.append(Fault(status, count, retry_after, after_commit))
    return JSONResponse({"queued": sum(f.count for f in sandbox.faults)})


async def webhook_status(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    return JSONResponse(
        {
            cid: {
                "status": s.status,
                "queued": len(s.queue),
                "sent": len(s.history),
                "delivered": sum(d.delivered for d in s.history),
            }
            for cid, s in sandbox.dispatcher.subscriptions.items()
        }
    )


routes = [
    Route("/control/organisations", organisations, methods=["GET", "POST"]),
    Route("/control/organisations/{tenant}/contacts", create_contact, methods=["POST"]),
    Route("/control/organisations/{tenant}/contacts/{id}", update_contact, methods=["POST"]),
    Route("/control/organisations/{tenant}/invoices", create_invoice, methods=["POST"]),
    Route("/control/organisations/{tenant}/invoices/{id}/pay", pay_invoice, methods=["POST"]),
    Route("/control/organisations/{tenant}/{table}", table, methods=["GET"]),
    Route("/control/faults", faults, methods=["POST"]),
    Route("/control/webhooks", webhook_status, methods=["GET"]),
    Route("/control/webhooks/{client_id}/intent-to-receive", intent_to_receive, methods=["POST"]),
]
