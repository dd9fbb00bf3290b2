"""The control API (/_control/…): act as the CRM's user, inject faults, inspect webhooks. No auth, no Version."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox import actions, contacts, invoices, oauth, payments
from ledgerbridge_crmconnect.sandbox.config import LocationSeed
from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse, ghl_id, json_body

ControlHandler = Callable[[Request, SandboxEngine, dict[str, Any]], Any]


def control(handler: ControlHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        engine: SandboxEngine = request.app.state.sandbox
        engine.ensure_started()
        try:
            body = await json_body(request) if request.method in ("POST", "PUT", "DELETE") else {}
            with engine.lock:
                result = handler(request, engine, body)
            if request.method != "GET":
                engine.save()
        except ApiError as error:
            return error.response()
        return JSONResponse(result, status_code=201 if request.method == "POST" else 200)

    endpoint.__name__ = handler.__name__
    return endpoint


# -- locations and contacts ----------------------------------------------------------------------------
@control
def create_location(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    seed = LocationSeed(
        id=body.get("id") or ghl_id(),
        name=body.get("name") or "Sandbox Location",
        country=body.get("country") or "US",
        token=body.get("token"),
        currency=body.get("currency") or "USD",
    )
    if seed.id in engine.state.locations:
        raise ApiError(400, f"Location {seed.id} already exists")
    return engine.add_location(seed)


@control
def list_locations(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    tokens: dict[str, list[str]] = {}
    for token, location_id in engine.state.pit_tokens.items():
        tokens.setdefault(location_id, []).append(token)
    return {"locations": [{**loc, "tokens": tokens.get(loc["id"], [])} for loc in engine.state.locations.values()]}


@control
def location_settings(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{allowDuplicateContact: bool}: the location's "Allow Duplicate Contact" setting."""
    location = engine.location(request.path_params["locationId"])
    allow = body.get("allowDuplicateContact")
    if not isinstance(allow, bool):
        raise ApiError(422, ["allowDuplicateContact must be a boolean value"])
    location["allowDuplicateContact"] = allow
    return location


@control
def contact_calls(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """Contact API requests answered so far, by "METHOD route" (a DELETE starts counting again)."""
    if request.method == "DELETE":
        contacts.reset_calls(engine)
    return {"calls": contacts.calls(engine)}


@control
def create_contact(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return contacts.render(actions.create_contact(engine, body))


@control
def update_contact(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return contacts.render(actions.update_contact(engine, request.path_params["contactId"], body))


@control
def delete_contact(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    actions.delete_contact(engine, request.path_params["contactId"])
    return {"deleted": True}


# -- invoices ------------------------------------------------------------------------------------------
@control
def create_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{contactId, items[{name, qty, amount, taxes[{name, rate}]}], discount?, currency?, send?: bool, …}"""
    return invoices.render(actions.create_invoice(engine, body))


@control
def send_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return invoices.render(actions.send_invoice(engine, request.path_params["invoiceId"]))


@control
def edit_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{items?, discount?, dueDate?, name?, …}: the user edits lines or the discount."""
    return invoices.render(actions.edit_invoice(engine, request.path_params["invoiceId"], body))


@control
def pay_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{amount?: number (default: the amount due), mode?: cash|card|…}"""
    return invoices.render(actions.pay_invoice(engine, request.path_params["invoiceId"], body))


@control
def void_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return invoices.render(actions.void_invoice(engine, request.path_params["invoiceId"]))


@control
def delete_invoice(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return invoices.render(actions.delete_invoice(engine, request.path_params["invoiceId"]))


# -- payments ------------------------------------------------------------------------------------------
def _checkout_result(result: dict[str, Record]) -> dict[str, Record]:
    out = {
        "order": payments.render_order(result["order"]),
        "transaction": payments.render_transaction(result["transaction"]),
    }
    if "subscription" in result:
        out["subscription"] = payments.render_subscription(result["subscription"])
    return out


@control
def order_form(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{contactId, items, discount?, step?: "one_step"|"two_step", upsell?: bool}"""
    return _checkout_result(actions.order_form(engine, body))


@control
def membership(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return _checkout_result(actions.membership(engine, body))


@control
def calendar(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{contactId, items, subType?: "meeting"|"service"}"""
    return _checkout_result(actions.calendar(engine, body))


@control
def payment_link(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return _checkout_result(actions.payment_link(engine, body))


@control
def start_subscription(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{contactId, items, interval?: monthly|…, sourceType?: funnel|membership|…, subType?}: the first charge."""
    return _checkout_result(actions.start_subscription(engine, body))


@control
def renew_subscription(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    transaction = actions.renew_subscription(engine, request.path_params["subscriptionId"])
    return {"transaction": payments.render_transaction(transaction)}


@control
def refund(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{amount?: number (default: everything not yet refunded)}"""
    return payments.render_transaction(actions.refund(engine, request.path_params["transactionId"], body))


@control
def reset(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """Forget everything on purpose: back to the configured locations, tokens and OAuth apps."""
    engine.reset()
    return {"reset": True, "locations": list(engine.state.locations)}


# -- faults, webhooks, keys, inspection ----------------------------------------------------------------
@control
def set_faults(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{latencyMs?: number, failNext?: number, status?: 500|502|503|429}"""
    if "latencyMs" in body:
        engine.faults.latency_seconds = float(body["latencyMs"]) / 1000
    if "failNext" in body:
        engine.faults.error_count = int(body["failNext"])
        engine.faults.error_status = int(body.get("status") or 500)
    return get_faults_state(engine)


def get_faults_state(engine: SandboxEngine) -> dict[str, Any]:
    f = engine.faults
    return {"latencyMs": f.latency_seconds * 1000, "failNext": f.error_count, "status": f.error_status}


@control
def clear_faults(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    engine.faults.latency_seconds, engine.faults.error_count = 0.0, 0
    engine.limiter.reset()
    return get_faults_state(engine)


@control
def deliveries(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return {"deliveries": engine.webhooks.log(request.query_params.get("type"))}


@control
def clear_deliveries(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    engine.webhooks.clear()
    return {"deliveries": engine.webhooks.log()}


@control
def set_webhook_url(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    """{url: string | null}"""
    url = body.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise ApiError(400, "url must be an http(s) URL or null")
    engine.webhook_url = url
    return {"url": url}


@control
def webhook_keys(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return engine.public_keys()


@control
def messages(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return {"messages": list(engine.state.messages.values())}


@control
def workflows(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return {"enrolments": list(engine.state.workflow_enrolments)}


@control
def expire_tokens(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    return {"expired": oauth.expire_access_tokens(engine)}


@control
def authorize_url(request: Request, engine: SandboxEngine, body: dict[str, Any]) -> Any:
    q = request.query_params
    return {"url": oauth.authorize_url(engine, q.get("client_id", ""), q.get("redirect_uri", ""))}


P = "/_control"
routes = [
    Route(f"{P}/locations", create_location, methods=["POST"]),
    Route(f"{P}/locations", list_locations, methods=["GET"]),
    Route(f"{P}/locations/{{locationId}}/settings", location_settings, methods=["PUT"]),
    Route(f"{P}/contacts/calls", contact_calls, methods=["GET", "DELETE"]),
    Route(f"{P}/contacts", create_contact, methods=["POST"]),
    Route(f"{P}/contacts/{{contactId}}", update_contact, methods=["PUT"]),
    Route(f"{P}/contacts/{{contactId}}", delete_contact, methods=["DELETE"]),
    Route(f"{P}/invoices", create_invoice, methods=["POST"]),
    Route(f"{P}/invoices/{{invoiceId}}", edit_invoice, methods=["PUT"]),
    Route(f"{P}/invoices/{{invoiceId}}", delete_invoice, methods=["DELETE"]),
    Route(f"{P}/invoices/{{invoiceId}}/send", send_invoice, methods=["POST"]),
    Route(f"{P}/invoices/{{invoiceId}}/pay", pay_invoice, methods=["POST"]),
    Route(f"{P}/invoices/{{invoiceId}}/void", void_invoice, methods=["POST"]),
    Route(f"{P}/payments/order-form", order_form, methods=["POST"]),
    Route(f"{P}/payments/membership", membership, methods=["POST"]),
    Route(f"{P}/payments/calendar", calendar, methods=["POST"]),
    Route(f"{P}/payments/payment-link", payment_link, methods=["POST"]),
    Route(f"{P}/payments/subscriptions", start_subscription, methods=["POST"]),
    Route(f"{P}/payments/subscriptions/{{subscriptionId}}/renew", renew_subscription, methods=["POST"]),
    Route(f"{P}/payments/transactions/{{transactionId}}/refund", refund, methods=["POST"]),
    Route(f"{P}/reset", reset, methods=["POST"]),
    Route(f"{P}/faults", set_faults, methods=["POST"]),
    Route(f"{P}/faults", clear_faults, methods=["DELETE"]),
    Route(f"{P}/webhooks/deliveries", deliveries, methods=["GET"]),
    Route(f"{P}/webhooks/deliveries", clear_deliveries, methods=["DELETE"]),
    Route(f"{P}/webhook-url", set_webhook_url, methods=["PUT"]),
    Route(f"{P}/webhook-keys", webhook_keys, methods=["GET"]),
    Route(f"{P}/messages", messages, methods=["GET"]),
    Route(f"{P}/workflow-enrolments", workflows, methods=["GET"]),
    Route(f"{P}/oauth/expire-tokens", expire_tokens, methods=["POST"]),
    Route(f"{P}/oauth/authorize-url", authorize_url, methods=["GET"]),
]
