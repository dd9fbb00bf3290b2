"""The Accounting API at /v3/company/{realmId}/…: auth, throttles, faults, requestid replay, then the engine."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import errors, jsonbody, query
from .clock import iso_ms
from .engine import Sandbox
from .entities import ENTITIES, URL_NAMES
from .limits import Observed
from .state import StoredReply

MAX_REQUEST_ID = 50
MAX_BATCH_REQUEST_ID = 36
MAX_BATCH_ITEMS = 30
MAX_BATCH_BID = 10


class DroppedResponse(Response):
    """Sends the status line and headers, then stops: the server closes the socket mid-response.

    uvicorn aborts the connection when an app returns without finishing its response, so the client sees a
    transport error although the write was committed.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})


def json_response(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status, media_type="application/json")


def fault_response(sandbox: Sandbox, error: errors.QBOError) -> Response:
    return json_response(errors.validation_body(error, iso_ms(sandbox.clock.now())), error.status)


def auth_response(sandbox: Sandbox, status: int, detail: str) -> Response:
    return json_response(errors.auth_body(status, detail, int(sandbox.clock.time() * 1000)), status)


def throttle_response(sandbox: Sandbox) -> Response:
    headers = {}
    if sandbox.limits.retry_after is not None:
        headers["Retry-After"] = str(sandbox.limits.retry_after)
    return Response(errors.throttle_xml(iso_ms(sandbox.clock.now())), 429, headers, media_type="application/xml")


def _body_json(raw: bytes) -> dict[str, Any]:
    try:
        data = jsonbody.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise errors.QBOError("2010", "Request has invalid or unsupported property",
                              "Request body is not valid JSON") from None  # fmt: skip
    if not isinstance(data, dict):
        raise errors.QBOError("2010", "Request has invalid or unsupported property", "Request body must be an object")
    return data


def _entity_object(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """The API accepts both a bare entity and one wrapped as {"Invoice": {...}}."""
    inner = body.get(name)
    return inner if isinstance(inner, dict) else body


def run_query(sandbox: Sandbox, realm: str, text: str) -> dict[str, Any]:
    parsed = query.parse(text)
    if parsed.entity not in ENTITIES:
        raise errors.invalid_query(f"Entity {parsed.entity!r} is not supported (entity names are case-sensitive)")
    rows = list(sandbox.company(realm).table(parsed.entity).values())
    return query.execute(parsed, rows)


def write(sandbox: Sandbox, realm: str, name: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """One create/update/delete/void, as the entity POST and batch items share it."""
    books = sandbox.books(realm)
    operation = params.get("operation", "").lower()
    include = params.get("include", "").lower()
    if operation == "delete":
        return books.delete(name, body)
    if operation == "void" or (operation == "update" and include == "void"):
        return books.void(name, body)
    has_id = body.get("Id") not in (None, "", 0, "0")
    if operation == "update" or has_id:
        return books.update(name, body, sparse=body.get("sparse") in (True, "true"))
    return books.create(name, body)


def batch(sandbox: Sandbox, realm: str, body: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    items = body.get("BatchItemRequest")
    if not isinstance(items, list) or not items:
        raise errors.required("BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        raise errors.validation(f"Batch request has {len(items)} items; at most {MAX_BATCH_ITEMS} are allowed")
    bids = [str(item.get("bId", "")) for item in items if isinstance(item, dict) and item.get("bId")]
    if len(bids) != len(set(bids)):
        raise errors.validation("Each bId of a batch request must be unique", "bId")
    sandbox.throttle.observed.setdefault(realm, Observed()).batch_items += len(items)
    out: list[dict[str, Any]] = []
    for item in items:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        try:
            if not bid:
                raise errors.required("bId")
            if request_id and len(bid) > MAX_BATCH_BID:
                raise errors.validation(f"bId may have at most {MAX_BATCH_BID} characters with a requestid")
            if "Query" in item:
                out.append({"QueryResponse": run_query(sandbox, realm, str(item["Query"])), "bId": bid})
                continue
            name = next((key for key in item if key in ENTITIES), None)
            if name is None:
                raise errors.required("entity")
            operation = str(item.get("operation", "create")).lower()
            params = {"operation": operation}
            if str(item.get("optionsData", "")).lower() == "void":
                params = {"operation": "void"}
            if operation not in ("create", "update", "delete"):
                raise errors.validation(f"Unsupported batch operation {operation!r}", "operation")
            entity_body = item[name]
            if operation == "create" and isinstance(entity_body, dict):
                entity_body = {k: v for k, v in entity_body.items() if k != "Id"}
            out.append({name: write(sandbox, realm, name, entity_body, params), "bId": bid})
        except errors.QBOError as exc:
            out.append({"Fault": exc.fault(), "bId": bid})
    # Intuit does not guarantee the answers' order: the sandbox answers last item first, so a client that
    # matches answers by position rather than by bId fails here, not in production
    out.reverse()
    return {"BatchItemResponse": out}


async def dispatch(sandbox: Sandbox, request: Request, realm: str, rest: str) -> dict[str, Any]:
    parts = [part for part in rest.split("/") if part]
    params = dict(request.query_params)
    if request.method == "GET":
        if parts == ["query"]:
            return {"QueryResponse": run_query(sandbox, realm, params.get("query", "")), "time": ""}
        if parts == ["cdc"]:
            return sandbox.cdc(realm, params.get("entities"), params.get("changedSince"))
        if len(parts) == 2 and parts[0].lower() in URL_NAMES:
            name = URL_NAMES[parts[0].lower()]
            return {name: sandbox.books(realm).read(name, parts[1])}
        raise errors.unsupported(f"GET {rest}", "this resource")
    raw = await request.body()
    if parts == ["query"]:
        return {"QueryResponse": run_query(sandbox, realm, raw.decode("utf-8", "replace")), "time": ""}
    if parts == ["batch"]:
        return batch(sandbox, realm, _body_json(raw), params.get("requestid"))
    if len(parts) == 1 and parts[0].lower() in URL_NAMES:
        name = URL_NAMES[parts[0].lower()]
        return {name: write(sandbox, realm, name, _entity_object(name, _body_json(raw)), params)}
    raise errors.unsupported(f"POST {rest}", "this resource")


def _is_write(request: Request, rest: str) -> bool:
    return request.method == "POST" and rest.strip("/") != "query"


async def api_endpoint(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    realm = request.path_params["realm"]
    sandbox.throttle.arrived(realm)
    status = 500
    try:
        response = await _answer(sandbox, request, realm)
        status = response.status_code
        return response
    finally:
        sandbox.throttle.answered(realm, status)


async def _answer(sandbox: Sandbox, request: Request, realm: str) -> Response:
    rest = request.path_params["rest"]
    faults = sandbox.faults
    if faults.latency and faults.applies(realm):
        await asyncio.sleep(faults.latency / sandbox.config.time_scale)
    forced = faults.next_status(realm)
    if forced == 429:
        return throttle_response(sandbox)
    if forced is not None:
        return json_response(errors.system_fault_body(forced, iso_ms(sandbox.clock.now())), forced)
    authorization = request.headers.get("authorization", "")
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    grant, reason = sandbox.tokens.check_access(sandbox.clock, token) if token else (None, "Token missing")
    if grant is None:
        return auth_response(sandbox, 401, f"{reason}: the access token is missing, invalid or expired")
    if grant.realm_id != realm:
        return auth_response(sandbox, 403, f"The token does not grant access to company {realm}")
    if realm not in sandbox.companies:
        return auth_response(sandbox, 403, f"Company {realm} does not exist")
    if not sandbox.throttle.admit(realm, batch=rest.strip("/") == "batch"):
        return throttle_response(sandbox)
    try:
        return await _handle(sandbox, request, realm, rest)
    finally:
        sandbox.throttle.release(realm)


async def _handle(sandbox: Sandbox, request: Request, realm: str, rest: str) -> Response:
    request_id = request.query_params.get("requestid")
    company = sandbox.company(realm)
    writing = _is_write(request, rest)
    if request_id is not None:
        limit = MAX_BATCH_REQUEST_ID if rest.strip("/") == "batch" else MAX_REQUEST_ID
        if len(request_id) > limit or not request_id:
            return fault_response(sandbox, errors.validation(f"requestid must have 1 to {limit} characters"))
        stored = sandbox.reply_for(realm, request_id)
        if stored is not None and writing:
            # Same status and body, byte for byte; the operation is not performed again.
            return Response(stored.body, stored.status, media_type=stored.media_type)
    try:
        body = await dispatch(sandbox, request, realm, rest)
        status = 200
    except errors.QBOError as exc:
        body = errors.validation_body(exc, "")
        status = exc.status
    body["time"] = iso_ms(sandbox.clock.now())
    response = json_response(body, status)
    if writing and request_id is not None:
        company.replies[request_id] = StoredReply(status, bytes(response.body), "application/json",
                                                  sandbox.clock.time())  # fmt: skip
        sandbox.dirty = True
    if writing and status == 200 and sandbox.faults.take_drop(realm):
        return DroppedResponse(bytes(response.body), status, media_type="application/json")
    return response


routes = [Route("/v3/company/{realm}/{rest:path}", api_endpoint, methods=["GET", "POST"])]
