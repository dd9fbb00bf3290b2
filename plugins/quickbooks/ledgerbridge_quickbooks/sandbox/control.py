"""The control API (JSON, under /_control): act as the QuickBooks user, change limits, inject faults, etc.

Not an Intuit API; it has no authentication because the sandbox only ever holds fake data.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import errors, jsonbody
from .clock import iso
from .config import AppRegistration
from .engine import Sandbox
from .entities import ENTITIES, URL_NAMES


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = jsonbody.loads(raw)
    except ValueError:
        raise errors.validation("The body must be JSON") from None
    if not isinstance(data, dict):
        raise errors.validation("The body must be a JSON object")
    return data


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def _entity(request: Request) -> str:
    raw = request.path_params["entity"]
    name = URL_NAMES.get(raw.lower().rstrip("s")) or URL_NAMES.get(raw.lower())
    if name is None or name not in ENTITIES:
        raise errors.validation(f"Unknown entity {raw!r}")
    return name


def _guard(handler: Any) -> Any:
    """Engine errors come back as the same Fault JSON the API uses; unknown ids as 404."""

    async def wrapped(request: Request) -> Response:
        try:
            result: Response = await handler(request)
        except errors.QBOError as exc:
            return JSONResponse({"Fault": exc.fault()}, 404 if exc.code == "610" else exc.status)
        except KeyError as exc:
            return _problem(404, f"Unknown {exc.args[0]}")
        return result

    return wrapped


def _company_json(sandbox: Sandbox, realm: str) -> dict[str, Any]:
    company = sandbox.company(realm)
    return {
        "realmId": company.realm_id, "name": company.name, "country": company.country,
        "counts": {name: len(rows) for name, rows in company.entities.items()},
    }  # fmt: skip


@_guard
async def state(request: Request) -> Response:
    sandbox = _sandbox(request)
    return JSONResponse({
        "now": iso(sandbox.clock.now()), "clock_offset": sandbox.clock.offset, "base_url": sandbox.base_url,
        "companies": [_company_json(sandbox, realm) for realm in sandbox.companies],
        "apps": [{"client_id": a.client_id, "redirect_uris": a.redirect_uris, "webhook_url": a.webhook_url,
                  "webhook_format": a.webhook_format} for a in sandbox.apps.values()],
        "connections": sorted(sandbox.connections),
        "limits": vars(sandbox.limits),
        "faults": vars(sandbox.faults),
    })  # fmt: skip


@_guard
async def companies(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "GET":
        return JSONResponse([_company_json(sandbox, realm) for realm in sandbox.companies])
    body = await _json(request)
    company = sandbox.create_company(str(body.get("name", "Sandbox Company")), str(body.get("country", "US")))
    return JSONResponse(_company_json(sandbox, company.realm_id), 201)


@_guard
async def apps(request: Request) -> Response:
    body = await _json(request)
    if not body.get("client_id") or not body.get("client_secret"):
        return _problem(400, "client_id and client_secret are required")
    fmt = body.get("webhook_format", "legacy")
    if fmt not in ("legacy", "cloudevents"):
        return _problem(400, "webhook_format must be legacy or cloudevents")
    app = AppRegistration(
        client_id=str(body["client_id"]), client_secret=str(body["client_secret"]),
        redirect_uris=[str(u) for u in body.get("redirect_uris", [])],
        verifier_token=str(body.get("verifier_token", "verifier-token")),
        webhook_url=body.get("webhook_url"), webhook_format=fmt,
    )  # fmt: skip
    _sandbox(request).register_app(app)
    return JSONResponse({"client_id": app.client_id}, 201)


@_guard
async def tokens(request: Request) -> Response:
    body = await _json(request)
    sandbox = _sandbox(request)
    result = sandbox.issue_tokens(str(body.get("client_id", "")), str(body.get("realmId", "")),
                                  str(body.get("email", "user@example.com")))  # fmt: skip
    return JSONResponse(result)


@_guard
async def entity_create(request: Request) -> Response:
    name = _entity(request)
    body = await _json(request)
    result = _sandbox(request).books(request.path_params["realm"]).create(name, body)
    return JSONResponse({name: result}, 201)


@_guard
async def entity_list(request: Request) -> Response:
    """Every row of one entity in one company, as the sandbox keeps it (for tests that check the books)."""
    name = _entity(request)
    rows = list(_sandbox(request).company(request.path_params["realm"]).table(name).values())
    return JSONResponse({name: rows})


@_guard
async def entity_read(request: Request) -> Response:
    name = _entity(request)
    result = _sandbox(request).books(request.path_params["realm"]).read(name, request.path_params["id"])
    return JSONResponse({name: result})


@_guard
async def entity_edit(request: Request) -> Response:
    """The user edits in the QuickBooks UI: a sparse change with the current SyncToken filled in."""
    name = _entity(request)
    books = _sandbox(request).books(request.path_params["realm"])
    current = books.get(name, request.path_params["id"])
    body = {**await _json(request), "Id": current["Id"], "SyncToken": current["SyncToken"]}
    action = request.path_params.get("action", "")
    if action == "void":
        return JSONResponse({name: books.void(name, body)})
    if action == "delete":
        return JSONResponse({name: books.delete(name, body)})
    return JSONResponse({name: books.update(name, body, sparse=True)})


@_guard
async def receive_payment(request: Request) -> Response:
    """Receive a payment against an invoice (the whole open balance unless `amount` is given)."""
    sandbox = _sandbox(request)
    books = sandbox.books(request.path_params["realm"])
    invoice = books.get("Invoice", request.path_params["id"])
    body = await _json(request)
    amount = Decimal(str(body.get("amount", invoice["Balance"])))
    payment: dict[str, Any] = {
        "CustomerRef": invoice["CustomerRef"], "TotalAmt": float(amount),
        "Line": [{"Amount": float(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }  # fmt: skip
    for key in ("PaymentMethodRef", "PaymentRefNum", "TxnDate", "DepositToAccountRef"):
        if key in body:
            payment[key] = body[key]
    return JSONResponse({"Payment": books.create("Payment", payment)}, 201)


@_guard
async def limits(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "POST":
        body = await _json(request)
        for key in ("requests_per_minute", "max_in_flight", "batches_per_minute"):
            if key in body:
                setattr(sandbox.limits, key, int(body[key]))
        if "retry_after" in body:
            sandbox.limits.retry_after = None if body["retry_after"] is None else int(body["retry_after"])
    observed = {realm: seen.summary() for realm, seen in sandbox.throttle.observed.items()}
    return JSONResponse(vars(sandbox.limits) | {"observed": observed})


@_guard
async def faults(request: Request) -> Response:
    sandbox = _sandbox(request)
    if request.method == "DELETE":
        sandbox.faults.latency, sandbox.faults.statuses, sandbox.faults.drop_writes = 0.0, [], 0
        sandbox.faults.realm = None
    elif request.method == "POST":
        body = await _json(request)
        if "latency_seconds" in body:
            sandbox.faults.latency = float(body["latency_seconds"])
        if "status" in body:
            status = int(body["status"])
            if status != 429 and not 500 <= status <= 599:
                return _problem(400, "status must be 429 or 5xx")
            sandbox.faults.statuses.extend([status] * int(body.get("count", 1)))
        if "drop_writes" in body:
            sandbox.faults.drop_writes = int(body["drop_writes"])
        if "realmId" in body:
            sandbox.faults.realm = body["realmId"]
    return JSONResponse(vars(sandbox.faults))


@_guard
async def webhooks(request: Request) -> Response:
    return JSONResponse([d.to_json() for d in _sandbox(request).dispatcher.history])


@_guard
async def clock(request: Request) -> Response:
    sandbox = _sandbox(request)
    body = await _json(request)
    sandbox.advance_clock(float(body.get("seconds", 0)))
    return JSONResponse({"now": iso(sandbox.clock.now()), "offset": sandbox.clock.offset})


@_guard
async def expire_requestids(request: Request) -> Response:
    """{realm?: str}: forget stored requestid replies now, as Intuit does after its window."""
    sandbox = _sandbox(request)
    realm = (await _json(request)).get("realm")
    if realm is not None and (not isinstance(realm, str) or realm not in sandbox.companies):
        return _problem(400, f"unknown realm {realm!r}")
    return JSONResponse({"expired": sandbox.expire_replies(realm)})


@_guard
async def save(request: Request) -> Response:
    sandbox = _sandbox(request)
    if not sandbox.config.state_file:
        return _problem(400, "no state_file configured")
    sandbox.save()
    return JSONResponse({"saved": sandbox.config.state_file})


@_guard
async def reset(request: Request) -> Response:
    sandbox = _sandbox(request)
    sandbox.reset()
    return JSONResponse({"reset": True, "companies": list(sandbox.companies)})


PREFIX = "/_control"
routes = [
    Route(PREFIX + "/state", state),
    Route(PREFIX + "/companies", companies, methods=["GET", "POST"]),
    Route(PREFIX + "/apps", apps, methods=["POST"]),
    Route(PREFIX + "/tokens", tokens, methods=["POST"]),
    Route(PREFIX + "/limits", limits, methods=["GET", "POST"]),
    Route(PREFIX + "/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route(PREFIX + "/webhooks", webhooks),
    Route(PREFIX + "/clock/advance", clock, methods=["POST"]),
    Route(PREFIX + "/save", save, methods=["POST"]),
    Route(PREFIX + "/reset", reset, methods=["POST"]),
    Route(PREFIX + "/requestids/expire", expire_requestids, methods=["POST"]),
    Route(PREFIX + "/companies/{realm}/invoices/{id}/payments", receive_payment, methods=["POST"]),
    Route(PREFIX + "/companies/{realm}/{entity}", entity_list, methods=["GET"]),
    Route(PREFIX + "/companies/{realm}/{entity}", entity_create, methods=["POST"]),
    Route(PREFIX + "/companies/{realm}/{entity}/{id}", entity_read, methods=["GET"]),
    Route(PREFIX + "/companies/{realm}/{entity}/{id}", entity_edit, methods=["POST"]),
    Route(PREFIX + "/companies/{realm}/{entity}/{id}/{action:str}", entity_edit, methods=["POST"]),
]
