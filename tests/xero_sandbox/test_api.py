"""The Accounting API: contacts (where, If-Modified-Since, paging, unique names), invoices with Xero's totals,
payments, voids, receive-money bank transactions, error shapes, Idempotency-Key replay and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from ledgerbridge_xero.sandbox import Sandbox

from .conftest import Connected, connect, make_config


async def _contact(xero: Connected, name: str, email: str | None = None) -> dict:
    response = await xero.put("/Contacts", {"Contacts": [{"Name": name, "EmailAddress": email}]})
    assert response.status_code == 200, response.text
    return response.json()["Contacts"][0]


async def _invoice(xero: Connected, contact_id: str, lines: list[dict], **extra: object) -> httpx.Response:
    body = {
        "Type": "ACCREC",
        "Contact": {"ContactID": contact_id},
        "LineItems": lines,
        "Date": "2024-03-01",
        "DueDate": "2024-03-31",
        "Status": "AUTHORISED",
        **extra,
    }
    return await xero.put("/Invoices", {"Invoices": [body]})


async def test_contacts_are_found_by_email_with_where(xero: Connected) -> None:
    await _contact(xero, "Ada Lovelace", "Ada@Example.com")
    await _contact(xero, "Grace Hopper", "grace@example.com")
    exact = await xero.get("/Contacts", params={"where": 'EmailAddress=="Ada@Example.com"'})
    assert [c["Name"] for c in exact.json()["Contacts"]] == ["Ada Lovelace"]
    case = await xero.get("/Contacts", params={"where": 'EmailAddress=="ada@example.com"'})
    assert case.json()["Contacts"] == []  # string comparison is exact
    lowered = await xero.get("/Contacts", params={"where": 'EmailAddress.ToLower()=="ada@example.com"'})
    assert [c["Name"] for c in lowered.json()["Contacts"]] == ["Ada Lovelace"]
    broken = await xero.get("/Contacts", params={"where": 'EmailAddress=="unterminated'})
    assert broken.status_code == 400


async def test_contact_names_are_unique_among_active_contacts(xero: Connected) -> None:
    await _contact(xero, "Ada Lovelace")
    again = await xero.put("/Contacts", {"Contacts": [{"Name": "ada lovelace", "EmailAddress": "other@example.com"}]})
    assert again.status_code == 400
    body = again.json()
    assert body["Type"] == "ValidationException" and body["ErrorNumber"] == 10
    assert body["Elements"][0]["ValidationErrors"][0]["Message"] == (
        "The contact name ada lovelace is already assigned to another contact. "
        "The contact name must be unique across all active contacts."
    )
    assert (await xero.get("/Contacts")).json()["Contacts"][0]["Name"] == "Ada Lovelace"  # nothing written


async def test_if_modified_since_and_paging(xero: Connected) -> None:
    engine = xero.sandbox
    organisation = engine.organisation(xero.tenant_id)
    assert organisation is not None
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for n in range(5):
        organisation.clock = lambda n=n: (start + timedelta(minutes=n)).timestamp()
        await _contact(xero, f"Contact {n}")
    since = (start + timedelta(minutes=1, seconds=30)).isoformat()
    changed = await xero.get(
        "/Contacts",
        headers={"If-Modified-Since": since},
        params={"order": "UpdatedDateUTC ASC", "page": "1", "pageSize": "2"},
    )
    body = changed.json()
    assert [c["Name"] for c in body["Contacts"]] == ["Contact 2", "Contact 3"]
    assert body["pagination"] == {"page": 1, "pageSize": 2, "pageCount": 2, "itemCount": 3}
    page2 = await xero.get(
        "/Contacts",
        headers={"If-Modified-Since": since},
        params={"order": "UpdatedDateUTC ASC", "page": "2", "pageSize": "2"},
    )
    assert [c["Name"] for c in page2.json()["Contacts"]] == ["Contact 4"]
    assert body["Contacts"][0]["UpdatedDateUTC"].startswith("/Date(")


async def test_invoice_totals_follow_xero_line_tax_and_discount_rounding(
    sandbox: tuple[httpx.AsyncClient, Sandbox],
) -> None:
    http, engine = sandbox
    xero = await connect(http, engine, tenant=engine.by_name("Demo Company (UK)").tenant_id)
    ada = await _contact(xero, "Ada")
    lines = [
        {
            "Description": "Consulting",
            "Quantity": 3,
            "UnitAmount": 33.33,
            "AccountCode": "200",
            "TaxType": "OUTPUT2",
            "DiscountRate": 10,
        },
        {
            "Description": "Travel",
            "Quantity": 1,
            "UnitAmount": 45.5,
            "AccountCode": "200",
            "TaxType": "RROUTPUT",
            "DiscountAmount": 5.5,
        },
        {"Description": "Book", "Quantity": 2, "UnitAmount": 9.99, "AccountCode": "200", "TaxType": "ZERORATEDOUTPUT"},
    ]
    created = await _invoice(xero, ada["ContactID"], lines, InvoiceNumber="INV-77")
    assert created.status_code == 200, created.text
    invoice = created.json()["Invoices"][0]
    # 99.99 − 10.00 = 89.99 (tax 18.00); 45.50 − 5.50 = 40.00 (tax 2.00); 19.98 (tax 0)
    assert [line["LineAmount"] for line in invoice["LineItems"]] == [89.99, 40.0, 19.98]
    assert [line["TaxAmount"] for line in invoice["LineItems"]] == [18.0, 2.0, 0.0]
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"], invoice["AmountDue"]) == (
        149.97,
        20.0,
        169.97,
        169.97,
    )
    assert invoice["TotalDiscount"] == 15.5 and invoice["Status"] == "AUTHORISED"
    duplicate = await _invoice(xero, ada["ContactID"], lines, InvoiceNumber="INV-77")
    assert duplicate.json()["Elements"][0]["ValidationErrors"][0]["Message"] == "Invoice # must be unique."
    bad_tax = await _invoice(xero, ada["ContactID"], [{**lines[0], "TaxType": "NOPE"}])
    assert "TaxType code 'NOPE'" in bad_tax.json()["Elements"][0]["ValidationErrors"][0]["Message"]


async def test_payments_then_void_rules(xero: Connected) -> None:
    ada = await _contact(xero, "Ada")
    line = {"Description": "Work", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200"}
    invoice = (await _invoice(xero, ada["ContactID"], [line])).json()["Invoices"][0]
    pay = {
        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
        "Account": {"Code": "090"},
        "Date": "2024-03-02",
        "Amount": 40,
    }
    paid = await xero.put("/Payments", {"Payments": [pay]})
    assert paid.status_code == 200, paid.text
    too_much = await xero.put("/Payments", {"Payments": [{**pay, "Amount": 60.01}]})
    assert "exceeds the amount outstanding" in too_much.json()["Elements"][0]["ValidationErrors"][0]["Message"]
    to_sales = await xero.put("/Payments", {"Payments": [{**pay, "Account": {"Code": "200"}}]})
    assert to_sales.status_code == 400
    void = await xero.post(f"/Invoices/{invoice['InvoiceID']}", {"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"})
    assert void.status_code == 400  # a payment is allocated: delete it first
    payment_id = paid.json()["Payments"][0]["PaymentID"]
    deleted = await xero.post(f"/Payments/{payment_id}", {"Status": "DELETED"})
    assert deleted.status_code == 200, deleted.text
    void = await xero.post(f"/Invoices/{invoice['InvoiceID']}", {"InvoiceID": invoice["InvoiceID"], "Status": "VOIDED"})
    assert void.status_code == 200 and void.json()["Invoices"][0]["Status"] == "VOIDED"
    rest = await xero.put("/Payments", {"Payments": [{**pay, "Amount": 10}]})
    assert rest.status_code == 400


async def test_full_payment_marks_the_invoice_paid_and_locks_it(xero: Connected) -> None:
    ada = await _contact(xero, "Ada")
    line = {"Description": "Work", "Quantity": 2, "UnitAmount": 25, "AccountCode": "200"}
    invoice = (await _invoice(xero, ada["ContactID"], [line])).json()["Invoices"][0]
    await xero.put(
        "/Payments",
        {"Payments": [{"Invoice": {"InvoiceID": invoice["InvoiceID"]}, "Account": {"Code": "090"}, "Amount": 50}]},
    )
    after = (await xero.get(f"/Invoices/{invoice['InvoiceID']}")).json()["Invoices"][0]
    assert (after["Status"], after["AmountDue"], after["AmountPaid"]) == ("PAID", 0.0, 50.0)
    assert after["FullyPaidOnDate"].startswith("/Date(")
    edit = await xero.post(f"/Invoices/{invoice['InvoiceID']}", {"LineItems": [{**line, "Quantity": 3}]})
    assert edit.status_code == 400


async def test_receive_money_needs_a_bank_account(xero: Connected) -> None:
    ada = await _contact(xero, "Ada")
    body = {
        "Type": "RECEIVE",
        "Contact": {"ContactID": ada["ContactID"]},
        "BankAccount": {"Code": "090"},
        "LineItems": [
            {"Description": "Course", "Quantity": 1, "UnitAmount": 120, "AccountCode": "200", "TaxType": "TAX001"}
        ],
    }
    made = await xero.put("/BankTransactions", {"BankTransactions": [body]})
    assert made.status_code == 200, made.text
    transaction = made.json()["BankTransactions"][0]
    assert (transaction["Total"], transaction["TotalTax"], transaction["Status"]) == (129.9, 9.9, "AUTHORISED")
    wrong = await xero.put("/BankTransactions", {"BankTransactions": [{**body, "BankAccount": {"Code": "200"}}]})
    assert wrong.status_code == 400


async def test_idempotency_key_replays_the_first_answer(xero: Connected) -> None:
    key = {"Idempotency-Key": "create-ada-1"}
    first = await xero.put("/Contacts", {"Contacts": [{"Name": "Ada"}]}, headers=key)
    second = await xero.put("/Contacts", {"Contacts": [{"Name": "Ada"}]}, headers=key)
    assert first.json() == second.json()
    assert len((await xero.get("/Contacts")).json()["Contacts"]) == 1
    other = await xero.put("/Contacts", {"Contacts": [{"Name": "Bob"}]}, headers=key)
    assert other.status_code == 400  # the key was used for a different request


async def test_not_found_and_malformed_bodies(xero: Connected) -> None:
    missing = await xero.get("/Invoices/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    broken = await xero.http.put(
        "/api.xro/2.0/Contacts", content=b"{", headers={**xero.headers, "content-type": "application/json"}
    )
    assert broken.status_code == 400 and broken.json()["Type"] == "PostDataInvalidException"


async def test_minute_limit_answers_429_with_retry_after_and_headers() -> None:
    from ledgerbridge_xero.sandbox import create_app

    app = create_app(make_config(calls_per_minute=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://xero.test") as http:
        xero = await connect(http, app.state.sandbox)
        remaining = [(await xero.get("/Accounts")).headers["X-MinLimit-Remaining"] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        refused = await xero.get("/Accounts")
        assert refused.status_code == 429
        assert refused.headers["X-Rate-Limit-Problem"] == "minute" and int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["X-DayLimit-Remaining"] == "4997"


async def test_a_restarted_sandbox_keeps_its_books_and_connections(tmp_path: Path) -> None:
    from ledgerbridge_xero.sandbox import create_app

    state = str(tmp_path / "xero.json")
    first = create_app(make_config(state_file=state))
    async with (
        first.router.lifespan_context(first),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://xero.test") as http,
    ):
        xero = await connect(http, first.state.sandbox)
        ada = await _contact(xero, "Ada")
        line = {"Description": "Work", "Quantity": 1, "UnitAmount": 12.34, "AccountCode": "200"}
        await _invoice(xero, ada["ContactID"], [line])
    second = create_app(make_config(state_file=state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://xero.test") as http:
        again = Connected(http, second.state.sandbox, xero.tokens, xero.tenant_id)
        invoices = (await again.get("/Invoices")).json()["Invoices"]
        assert [(i["Contact"]["Name"], i["Total"]) for i in invoices] == [("Ada", 12.34)]


async def test_a_sixth_concurrent_call_and_the_day_limit_are_refused() -> None:
    from ledgerbridge_xero.sandbox import create_app

    app = create_app(make_config(concurrent_calls=1, calls_per_day=3))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://xero.test") as http:
        xero = await connect(http, app.state.sandbox)
        limits = app.state.sandbox.limits
        assert limits.acquire("sandbox-client", xero.tenant_id) is None  # one call in flight
        busy = await xero.get("/Accounts")
        assert (busy.status_code, busy.headers["X-Rate-Limit-Problem"]) == (429, "concurrent")
        limits.release("sandbox-client", xero.tenant_id)
        assert (await xero.get("/Accounts")).status_code == 200
        assert (await xero.get("/Accounts")).headers["X-DayLimit-Remaining"] == "0"
        over = await xero.get("/Accounts")
        assert (over.status_code, over.headers["X-Rate-Limit-Problem"]) == (429, "daily")
        assert int(over.headers["Retry-After"]) > 3600
