"""The sandbox's answers, and the requests these tests send, checked against Xero's published OpenAPI
(xero_accounting.yaml, xero-identity.yaml). Deviations the spec forces are narrow Allowances listed here."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from ledgerbridge_xero.sandbox import Sandbox, create_app

from .conftest import BASE, Connected, connect, make_config
from .openapi_xero import ACCOUNTING_PREFIX, XERO, Allowance, Request, Response, accounting, identity, problems

ALLOWANCES = [
    Allowance("get", "/Connections", "response", "*/createdDateUtc", "format",
              "the spec's own example has no offset (2019-12-07T18:46:19.5165400), as Xero sends it"),
    Allowance("get", "/Connections", "response", "*/updatedDateUtc", "format",
              "the spec's own example has no offset, as Xero sends it"),
]  # fmt: skip


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[Connected, list[httpx.Response]]]:
    exchanges: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        exchanges.append(response)

    app = create_app(make_config())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                 event_hooks={"response": [keep]}) as http:  # fmt: skip
        engine: Sandbox = app.state.sandbox
        connected = await connect(http, engine)
        exchanges.clear()
        yield connected, exchanges


async def _scenario(xero: Connected) -> None:
    """Every endpoint the plugin uses, successes and Xero's documented errors."""
    key = {"Idempotency-Key": "k-1"}
    ada = (await xero.put("/Contacts", {"Contacts": [{"Name": "Ada", "EmailAddress": "ada@example.com",
                                                       "FirstName": "Ada", "LastName": "Lovelace"}]}, headers=key)).json()  # fmt: skip
    await xero.put("/Contacts", {"Contacts": [{"Name": "Ada", "EmailAddress": "ada@example.com"}]}, headers=key)
    await xero.put("/Contacts", {"Contacts": [{"Name": "ada"}]})  # 400: the name is taken
    contact_id = ada["Contacts"][0]["ContactID"]
    await xero.get("/Contacts", params={"where": 'EmailAddress!=null&&EmailAddress.ToLower()=="ada@example.com"'})
    await xero.get("/Contacts", params={"page": "1", "pageSize": "100", "order": "UpdatedDateUTC ASC",
                                        "includeArchived": "true"}, headers={"If-Modified-Since": "2020-02-06T12:17:43.202-08:00"})  # fmt: skip
    await xero.get(f"/Contacts/{contact_id}")
    await xero.post(f"/Contacts/{contact_id}", {"Contacts": [{"EmailAddress": "ada@lovelace.example"}]})
    await xero.get("/Organisation")
    await xero.get("/Accounts", params={"where": 'Status=="ACTIVE"'})
    await xero.get("/TaxRates")
    await xero.put("/TaxRates", {"TaxRates": [{"Name": "City tax (8.5%)", "ReportTaxType": "OUTPUT",
                                               "TaxComponents": [{"Name": "City tax", "Rate": 8.5, "IsCompound": False}]}]})  # fmt: skip
    await xero.put(
        "/Items",
        {"Items": [{"Code": "COURSE", "Name": "Course", "SalesDetails": {"UnitPrice": 50, "AccountCode": "200"}}]},
    )
    await xero.get("/Items")
    line = {"Description": "Work", "Quantity": 2, "UnitAmount": 50, "AccountCode": "200", "TaxType": "TAX001",
            "DiscountAmount": 10}  # fmt: skip
    invoice = {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Date": "2024-03-01", "DueDate": "2024-03-31",
               "Status": "AUTHORISED", "LineAmountTypes": "Exclusive", "LineItems": [line], "InvoiceNumber": "OA-1",
               "Reference": "CRM OA-1"}  # fmt: skip
    made = (await xero.put("/Invoices", {"Invoices": [invoice]}, headers={"Idempotency-Key": "inv-1"})).json()
    invoice_id = made["Invoices"][0]["InvoiceID"]
    await xero.put("/Invoices", {"Invoices": [invoice]})  # 400: number taken
    await xero.post(f"/Invoices/{invoice_id}", {"InvoiceID": invoice_id, "LineItems": [{**line, "Quantity": 3}]})
    await xero.get(f"/Invoices/{invoice_id}")
    await xero.get("/Invoices", params={"ContactIDs": contact_id, "Statuses": "DRAFT,SUBMITTED,AUTHORISED,PAID",
                                        "where": 'Type=="ACCREC"', "order": "Date ASC"})  # fmt: skip
    pay = {"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"}, "Date": "2024-03-02", "Amount": 50,
           "Reference": "CRM OA-1"}  # fmt: skip
    paid = (await xero.put("/Payments", {"Payments": [pay]}, headers={"Idempotency-Key": "pay-1"})).json()
    await xero.put("/Payments", {"Payments": [{**pay, "Amount": 5000}]})  # 400: more than is owed
    await xero.get("/Payments")
    await xero.post(f"/Payments/{paid['Payments'][0]['PaymentID']}", {"Status": "DELETED"})
    await xero.post(f"/Invoices/{invoice_id}", {"InvoiceID": invoice_id, "Status": "VOIDED"})
    receive = {"Type": "RECEIVE", "Contact": {"ContactID": contact_id}, "BankAccount": {"Code": "090"},
               "Date": "2024-03-05", "Reference": "ch_1", "LineAmountTypes": "Exclusive", "LineItems": [line]}  # fmt: skip
    received = (
        await xero.put("/BankTransactions", {"BankTransactions": [receive]}, headers={"Idempotency-Key": "bt-1"})
    ).json()
    await xero.get(f"/BankTransactions/{received['BankTransactions'][0]['BankTransactionID']}")
    await xero.get("/BankTransactions")
    await xero.http.get("/connections", headers={"Authorization": "Bearer " + xero.tokens["access_token"]})


def _split(response: httpx.Response) -> tuple[str, Request, Response]:
    request = response.request
    path = request.url.path
    if path.startswith(ACCOUNTING_PREFIX):
        spec = "accounting"
    else:
        spec, path = "identity", "/Connections" if path == "/connections" else path
    query = request.url.query.decode() if isinstance(request.url.query, bytes) else str(request.url.query)
    return (
        spec,
        Request(XERO, request.method, path, query, dict(request.headers), request.content),
        Response(response.status_code, dict(response.headers), response.content),
    )


async def test_the_sandbox_answers_as_xero_accounting_openapi_describes(
    recorded: tuple[Connected, list[httpx.Response]],
) -> None:
    xero, exchanges = recorded
    await _scenario(xero)
    specs = {"accounting": accounting(), "identity": identity()}
    failures: list[str] = []
    statuses: set[tuple[str, str, int]] = set()
    for exchange in exchanges:
        name, request, response = _split(exchange)
        statuses.add((request.method, request.path.split("/")[-1 if name == "identity" else 3], response.status_code))
        failures += problems(specs[name], "request", request, None, ALLOWANCES)
        failures += problems(specs[name], "response", request, response, ALLOWANCES)
    assert not failures, "\n".join(failures)
    assert ("put", "Contacts", 400) in statuses and ("put", "Invoices", 400) in statuses  # errors were validated too
    assert len(exchanges) > 25


def test_an_invalid_document_is_refused_by_the_spec_too() -> None:
    """The check can fail: a ValidationException without its required shape is caught."""
    request = Request(XERO, "PUT", "/api.xro/2.0/Contacts", "", {"xero-tenant-id": "t", "content-type": "application/json"},
                      b'{"Contacts": [{"Name": "Ada"}]}')  # fmt: skip
    response = Response(200, {"content-type": "application/json"}, b'{"Contacts": [{"ContactID": 42}]}')
    assert problems(accounting(), "response", request, response, [])
