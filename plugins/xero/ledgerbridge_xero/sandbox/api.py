"""The Accounting API (`/api.xro/2.0/…`): Contacts, Invoices, Payments, BankTransactions, Accounts, TaxRates,
Items and Organisation, behind Xero's bearer check, tenant header, limits and Idempotency-Key replay."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import dates
from .books import Organisation, new_id, render
from .engine import Fault, Recorded, Reply, Sandbox
from .errors import NotFound, ValidationFailed, bad_request, element_with_errors, not_found, problem, validation_body
from .where import WhereError, compile_where

PREFIX = "/api.xro/2.0"
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Handler = Callable[[Request, Organisation], Awaitable[tuple[int, Any]]]


def _json(status: int, body: Any, headers: dict[str, str]) -> Response:
    return Response(json.dumps(body).encode(), status, headers=headers, media_type="application/json")


def _envelope(sandbox: Sandbox, collection: str, items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "Id": new_id(),
        "Status": "OK",
        "ProviderName": "ledgerbridge sandbox",
        "DateTimeUTC": dates.msdate(sandbox.clock()),
        **extra,
        collection: [render(i) for i in items],
    }


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def call(request: Request) -> Response:
        sandbox: Sandbox = request.app.state.sandbox
        raw = await request.body()
        sandbox.requests.append(
            Recorded(request.method, request.url.path, request.url.query, dict(request.headers), raw)
        )
        authorization = request.headers.get("authorization", "")
        session = (
            sandbox.identity.session_for_access(authorization[7:]) if authorization[:7].lower() == "bearer " else None
        )
        if session is None:
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        tenant_id = request.headers.get("xero-tenant-id", "").lower()
        if not tenant_id:
            return problem(403, "Forbidden", "AuthorizationUnsuccessful: the xero-tenant-id header is missing")
        if not any(c.tenant_id == tenant_id for c in sandbox.identity.connections_of(session)):
            return problem(403, "Forbidden", "AuthenticationUnsuccessful: the tenant is not connected to this app")
        organisation = sandbox.organisation(tenant_id)
        assert organisation is not None
        client_id = session.client_id
        refusal = sandbox.limits.acquire(client_id, tenant_id)
        if refusal is not None:
            headers = {
                "Retry-After": str(refusal.retry_after),
                "X-Rate-Limit-Problem": refusal.problem,
                **sandbox.limits.headers(client_id, tenant_id),
            }
            return Response(b"", 429, headers=headers)
        fault = sandbox.take_fault()
        if fault is not None and not fault.after_commit:
            sandbox.limits.release(client_id, tenant_id)
            return _fault(fault)
        try:
            key = request.headers.get("idempotency-key", "")
            write = request.method in ("PUT", "POST")
            if write and key:
                if len(key) > 128:
                    return bad_request("The Idempotency-Key must be at most 128 characters")
                fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + raw).hexdigest()
                previous = sandbox.replay(client_id, tenant_id, key)
                if previous is not None:
                    if previous.fingerprint != fingerprint:
                        return bad_request("The Idempotency-Key was already used with a different request")
                    return Response(
                        previous.body,
                        previous.status,
                        media_type="application/json",
                        headers=sandbox.limits.headers(client_id, tenant_id),
                    )
            try:
                status, body = await handler(request, organisation)
            except NotFound:
                return not_found()
            except WhereError as exc:
                status, body = 400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": str(exc)}
            except ValueError as exc:
                return bad_request(str(exc))
            sandbox.flush_events(organisation)
            encoded = json.dumps(body).encode()
            if write and key and status < 500:
                sandbox.remember(client_id, tenant_id, key, Reply(status, encoded, fingerprint, sandbox.clock()))
            if fault is not None:
                return _fault(fault)
            return Response(
                encoded, status, media_type="application/json", headers=sandbox.limits.headers(client_id, tenant_id)
            )
        finally:
            sandbox.limits.release(client_id, tenant_id)

    return call


def _fault(fault: Fault) -> Response:
    if fault.status == 429:
        return Response(b"", 429, headers={"Retry-After": str(fault.retry_after), "X-Rate-Limit-Problem": "minute"})
    return Response(b'{"Title": "Service Unavailable"}', fault.status, media_type="application/json")


async def _body(request: Request, collection: str) -> list[Any]:
    """A write's documents: `{"Contacts": [...]}` or a single document object."""
    raw = await request.body()
    try:
        data = json.loads(raw, parse_float=Decimal)
    except ValueError as exc:
        raise ValueError(f"The request body is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and collection in data:
        items = data[collection]
        if not isinstance(items, list):
            raise ValueError(f"{collection} must be a list")
        return items
    if isinstance(data, dict):
        return [data]
    raise ValueError("The request body must be a JSON object")


def _summarize(request: Request) -> bool:
    return request.query_params.get("summarizeErrors", "true").lower() != "false"


async def _save_many(
    request: Request, organisation: Organisation, collection: str, save: Callable[[dict[str, Any]], dict[str, Any]]
) -> tuple[int, Any]:
    sandbox: Sandbox = request.app.state.sandbox
    documents = await _body(request, collection)
    saved: list[dict[str, Any]] = []
    failures: list[ValidationFailed] = []
    for document in documents:
        try:
            saved.append(save(document))
        except ValidationFailed as failure:
            failures.append(failure)
            saved.append({**(document if isinstance(document, dict) else {}), "_failure": failure})
    if failures and _summarize(request):
        # all or nothing: Xero writes none of a batch whose errors are summarised; undo what was saved
        for document in saved:
            _forget(organisation, document)
            document.pop("_created_now", None)
        organisation.events.clear()
        return 400, validation_body([element_with_errors(f) for f in failures])
    out = []
    for document in saved:
        document.pop("_created_now", None)
        refused = document.pop("_failure", None)
        out.append(element_with_errors(refused) if refused else document)
    return 200, _envelope(sandbox, collection, out)


def _forget(organisation: Organisation, document: dict[str, Any]) -> None:
    for table, key in (
        (organisation.contacts, "ContactID"),
        (organisation.invoices, "InvoiceID"),
        (organisation.bank_transactions, "BankTransactionID"),
        (organisation.items, "ItemID"),
    ):
        if document.get(key) in table and table[document[key]] is document and "_created_now" in document:
            del table[document[key]]


def _filtered(request: Request, documents: list[dict[str, Any]], *, default_order: str) -> list[dict[str, Any]]:
    params = request.query_params
    since_header = request.headers.get("if-modified-since")
    if since_header:
        since = dates.parse_http_date(since_header)
        if since is None:
            raise ValueError("If-Modified-Since must be an ISO 8601 date-time")
        documents = [d for d in documents if d.get("_updated", 0) > since]
    where = params.get("where")
    if where:
        predicate = compile_where(where)
        documents = [d for d in documents if predicate(render(d))]
    order = (params.get("order") or default_order).split()
    field_name, descending = order[0], len(order) > 1 and order[1].upper() == "DESC"
    if field_name == "UpdatedDateUTC":
        documents.sort(key=lambda d: d.get("_updated", 0), reverse=descending)
    else:
        documents.sort(key=lambda d: str(d.get(field_name) or ""), reverse=descending)
    return documents


def _page(request: Request, documents: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    page_text = request.query_params.get("page")
    if page_text is None:
        return documents, None
    try:
        page = int(page_text)
        size = min(int(request.query_params.get("pageSize", PAGE_SIZE)), MAX_PAGE_SIZE)
    except ValueError as exc:
        raise ValueError("page and pageSize must be integers") from exc
    if page < 1 or size < 1:
        raise ValueError("page and pageSize must be at least 1")
    chunk = documents[(page - 1) * size : page * size]
    count = len(documents)
    return chunk, {"page": page, "pageSize": size, "pageCount": -(-count // size), "itemCount": count}


def _ids(request: Request, name: str) -> set[str] | None:
    value = request.query_params.get(name)
    return {v.strip().lower() for v in value.split(",") if v.strip()} if value else None


# Contacts


@endpoint
async def get_contacts(request: Request, organisation: Organisation) -> tuple[int, Any]:
    contacts = list(organisation.contacts.values())
    if request.query_params.get("includeArchived", "false").lower() != "true":
        contacts = [c for c in contacts if c["ContactStatus"] != "ARCHIVED"]
    ids = _ids(request, "IDs")
    if ids:
        contacts = [c for c in contacts if c["ContactID"] in ids]
    term = (request.query_params.get("searchTerm") or "").lower()
    if term:
        contacts = [
            c
            for c in contacts
            if any(
                term in str(c.get(f) or "").lower()
                for f in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            )
        ]
    contacts = _filtered(request, contacts, default_order="Name")
    chunk, pagination = _page(request, contacts)
    extra = {"pagination": pagination} if pagination else {}
    return 200, _envelope(request.app.state.sandbox, "Contacts", chunk, **extra)


@endpoint
async def get_contact(request: Request, organisation: Organisation) -> tuple[int, Any]:
    contact = organisation.contact(request.path_params["id"])
    return 200, _envelope(request.app.state.sandbox, "Contacts", [contact])


@endpoint
async def put_contacts(request: Request, organisation: Organisation) -> tuple[int, Any]:
    def create(body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(body, dict) and body.get("ContactID"):
            raise ValidationFailed(body, ["A ContactID cannot be given when creating a contact (PUT); use POST"])
        return _fresh(organisation.save_contact(body))

    return await _save_many(request, organisation, "Contacts", create)


@endpoint
async def post_contacts(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(
        request,
        organisation,
        "Contacts",
        lambda b: _fresh_if_new(organisation.contacts, "ContactID", b, organisation.save_contact),
    )


@endpoint
async def post_contact(request: Request, organisation: Organisation) -> tuple[int, Any]:
    contact_id = request.path_params["id"]
    organisation.contact(contact_id)
    return await _save_many(
        request, organisation, "Contacts", lambda b: organisation.save_contact({**b, "ContactID": contact_id})
    )


def _fresh(document: dict[str, Any]) -> dict[str, Any]:
    document["_created_now"] = True
    return document


def _fresh_if_new(
    table: dict[str, Any], key: str, body: dict[str, Any], save: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    before = set(table)
    saved = save(body)
    return _fresh(saved) if saved[key] not in before else saved


# Invoices


@endpoint
async def get_invoices(request: Request, organisation: Organisation) -> tuple[int, Any]:
    invoices = list(organisation.invoices.values())
    ids = _ids(request, "IDs")
    if ids:
        invoices = [i for i in invoices if i["InvoiceID"] in ids]
    contacts = _ids(request, "ContactIDs")
    if contacts:
        invoices = [i for i in invoices if i["Contact"]["ContactID"] in contacts]
    statuses = request.query_params.get("Statuses")
    if statuses:
        wanted = {s.strip().upper() for s in statuses.split(",")}
        invoices = [i for i in invoices if i["Status"] in wanted]
    numbers = request.query_params.get("InvoiceNumbers")
    if numbers:
        invoices = [i for i in invoices if i["InvoiceNumber"] in {n.strip() for n in numbers.split(",")}]
    invoices = _filtered(request, invoices, default_order="UpdatedDateUTC")
    chunk, pagination = _page(request, invoices)
    extra = {"pagination": pagination} if pagination else {}
    return 200, _envelope(request.app.state.sandbox, "Invoices", chunk, **extra)


@endpoint
async def get_invoice(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return 200, _envelope(request.app.state.sandbox, "Invoices", [organisation.invoice(request.path_params["id"])])


@endpoint
async def put_invoices(request: Request, organisation: Organisation) -> tuple[int, Any]:
    def create(body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(body, dict) and body.get("InvoiceID"):
            raise ValidationFailed(body, ["An InvoiceID cannot be given when creating an invoice (PUT); use POST"])
        return _fresh(organisation.save_invoice(body))

    return await _save_many(request, organisation, "Invoices", create)


@endpoint
async def post_invoices(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(
        request,
        organisation,
        "Invoices",
        lambda b: _fresh_if_new(organisation.invoices, "InvoiceID", b, organisation.save_invoice),
    )


@endpoint
async def post_invoice(request: Request, organisation: Organisation) -> tuple[int, Any]:
    invoice_id = request.path_params["id"]
    organisation.invoice(invoice_id)
    return await _save_many(request, organisation, "Invoices", lambda b: organisation.save_invoice(b, invoice_id))


# Payments, bank transactions, settings


@endpoint
async def get_payments(request: Request, organisation: Organisation) -> tuple[int, Any]:
    payments = _filtered(request, list(organisation.payments.values()), default_order="UpdatedDateUTC")
    chunk, pagination = _page(request, payments)
    extra = {"pagination": pagination} if pagination else {}
    return 200, _envelope(request.app.state.sandbox, "Payments", chunk, **extra)


@endpoint
async def put_payments(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(request, organisation, "Payments", organisation.save_payment)


@endpoint
async def post_payment(request: Request, organisation: Organisation) -> tuple[int, Any]:
    payment_id = request.path_params["id"]
    if payment_id.lower() not in organisation.payments:
        raise NotFound(payment_id)
    return await _save_many(request, organisation, "Payments", lambda b: organisation.delete_payment(payment_id, b))


@endpoint
async def get_bank_transactions(request: Request, organisation: Organisation) -> tuple[int, Any]:
    found = _filtered(request, list(organisation.bank_transactions.values()), default_order="UpdatedDateUTC")
    chunk, pagination = _page(request, found)
    extra = {"pagination": pagination} if pagination else {}
    return 200, _envelope(request.app.state.sandbox, "BankTransactions", chunk, **extra)


@endpoint
async def get_bank_transaction(request: Request, organisation: Organisation) -> tuple[int, Any]:
    found = organisation.bank_transactions.get(request.path_params["id"].lower())
    if found is None:
        raise NotFound(request.path_params["id"])
    return 200, _envelope(request.app.state.sandbox, "BankTransactions", [found])


@endpoint
async def put_bank_transactions(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(
        request, organisation, "BankTransactions", lambda b: _fresh(organisation.save_bank_transaction(b))
    )


@endpoint
async def get_accounts(request: Request, organisation: Organisation) -> tuple[int, Any]:
    found = _filtered(request, list(organisation.accounts.values()), default_order="Code")
    return 200, _envelope(request.app.state.sandbox, "Accounts", found)


@endpoint
async def get_tax_rates(request: Request, organisation: Organisation) -> tuple[int, Any]:
    found = _filtered(request, list(organisation.tax_rates.values()), default_order="Name")
    return 200, _envelope(request.app.state.sandbox, "TaxRates", found)


@endpoint
async def put_tax_rates(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(request, organisation, "TaxRates", organisation.save_tax_rate)


@endpoint
async def get_items(request: Request, organisation: Organisation) -> tuple[int, Any]:
    found = _filtered(request, list(organisation.items.values()), default_order="Code")
    return 200, _envelope(request.app.state.sandbox, "Items", found)


@endpoint
async def put_items(request: Request, organisation: Organisation) -> tuple[int, Any]:
    return await _save_many(request, organisation, "Items", lambda b: _fresh(organisation.save_item(b)))


@endpoint
async def get_organisation(request: Request, organisation: Organisation) -> tuple[int, Any]:
    body = {
        "OrganisationID": organisation.tenant_id,
        "Name": organisation.name,
        "LegalName": organisation.name,
        "BaseCurrency": organisation.currency,
        "CountryCode": organisation.country,
        "OrganisationType": "COMPANY",
        "Version": organisation.country if organisation.country in ("AU", "NZ", "GB", "US") else "GLOBAL",
        "OrganisationStatus": "ACTIVE",
        "IsDemoCompany": True,
        "ShortCode": "!" + organisation.tenant_id[:5],
    }
    return 200, _envelope(request.app.state.sandbox, "Organisations", [body])


routes = [
    Route(PREFIX + "/Contacts", get_contacts, methods=["GET"]),
    Route(PREFIX + "/Contacts", put_contacts, methods=["PUT"]),
    Route(PREFIX + "/Contacts", post_contacts, methods=["POST"]),
    Route(PREFIX + "/Contacts/{id}", get_contact, methods=["GET"]),
    Route(PREFIX + "/Contacts/{id}", post_contact, methods=["POST"]),
    Route(PREFIX + "/Invoices", get_invoices, methods=["GET"]),
    Route(PREFIX + "/Invoices", put_invoices, methods=["PUT"]),
    Route(PREFIX + "/Invoices", post_invoices, methods=["POST"]),
    Route(PREFIX + "/Invoices/{id}", get_invoice, methods=["GET"]),
    Route(PREFIX + "/Invoices/{id}", post_invoice, methods=["POST"]),
    Route(PREFIX + "/Payments", get_payments, methods=["GET"]),
    Route(PREFIX + "/Payments", put_payments, methods=["PUT", "POST"]),
    Route(PREFIX + "/Payments/{id}", post_payment, methods=["POST"]),
    Route(PREFIX + "/BankTransactions", get_bank_transactions, methods=["GET"]),
    Route(PREFIX + "/BankTransactions", put_bank_transactions, methods=["PUT"]),
    Route(PREFIX + "/BankTransactions/{id}", get_bank_transaction, methods=["GET"]),
    Route(PREFIX + "/Accounts", get_accounts, methods=["GET"]),
    Route(PREFIX + "/TaxRates", get_tax_rates, methods=["GET"]),
    Route(PREFIX + "/TaxRates", put_tax_rates, methods=["PUT"]),
    Route(PREFIX + "/Items", get_items, methods=["GET"]),
    Route(PREFIX + "/Items", put_items, methods=["PUT"]),
    Route(PREFIX + "/Organisation", get_organisation, methods=["GET"]),
]
