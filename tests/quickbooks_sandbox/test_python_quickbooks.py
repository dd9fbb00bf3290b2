"""python-quickbooks and intuit-oauth, unchanged, pointed at the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.base import EmailAddress, LinkedTxn, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import (
    DiscountLine,
    DiscountLineDetail,
    SalesItemLine,
    SalesItemLineDetail,
)
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment, PaymentLine

from .conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, Running, authorize


@pytest.fixture
def connected(server: Running, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Running, AuthClient, QuickBooks]]:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    auth = AuthClient(CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, environment=server.discovery)
    url = auth.get_authorization_url([Scopes.ACCOUNTING, Scopes.OPENID, Scopes.EMAIL], state_token="xyz")
    with httpx.Client() as browser:
        callback = authorize(browser, url)
    assert callback["state"] == ["xyz"]
    auth.get_bearer_token(callback["code"][0], realm_id=callback["realmId"][0])
    qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=auth.realm_id, minorversion=75)
    qb.api_url_v3 = server.url + "/v3"
    yield server, auth, qb


def _line(amount: float, *, taxable: bool = True, qty: float = 0, price: float = 0) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = Ref()
    line.SalesItemLineDetail.ItemRef.value = "1"
    line.SalesItemLineDetail.Qty = qty
    line.SalesItemLineDetail.UnitPrice = price
    if taxable:
        line.SalesItemLineDetail.TaxCodeRef = Ref()
        line.SalesItemLineDetail.TaxCodeRef.value = "TAX"
    return line


def _customer(qb: QuickBooks, name: str, email: str | None = None) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    if email:
        customer.PrimaryEmailAddr = EmailAddress()
        customer.PrimaryEmailAddr.Address = email
    return customer.save(qb=qb)


def test_tokens_refresh_and_userinfo(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    server, auth, _ = connected
    first_refresh = auth.refresh_token
    assert auth.expires_in == 3600 and auth.x_refresh_token_expires_in == 8726400
    auth.refresh()
    assert auth.refresh_token != first_refresh
    auth.refresh(refresh_token=first_refresh)  # the previous one still works within 24 h
    server.sandbox.advance_clock(86401)
    with pytest.raises(Exception, match="invalid_grant"):
        auth.refresh(refresh_token=first_refresh)
    auth.refresh()
    assert auth.get_user_info().json()["email"] == "owner@example.com"
    assert auth.revoke() is True
    with pytest.raises(Exception, match="invalid_grant"):
        auth.refresh()


def test_customers_errors_and_queries(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    _, _, qb = connected
    created = _customer(qb, "O'Brien Plumbing", "Pat@Example.com")
    assert created.Id and created.SyncToken == "0"
    with pytest.raises(QuickbooksException) as duplicate:
        _customer(qb, "o'brien plumbing")
    assert duplicate.value.error_code == 6240
    assert duplicate.value.detail == "The name supplied already exists. : null"
    fresh = Customer.get(created.Id, qb=qb)
    fresh.CompanyName = "OBP"
    fresh.save(qb=qb)
    with pytest.raises(QuickbooksException) as stale:
        created.save(qb=qb)  # still SyncToken 0
    assert stale.value.error_code == 5010
    assert [c.Id for c in Customer.filter(DisplayName="O'Brien Plumbing", qb=qb)] == [created.Id]
    assert [c.Id for c in Customer.where("PrimaryEmailAddr = 'pat@example.com'", qb=qb)] == [created.Id]
    assert Customer.count(qb=qb) == 1


def test_paging_2500_customers(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    server, _, qb = connected
    books = server.sandbox.books(server.realm)
    for number in range(2500):
        books.create("Customer", {"DisplayName": f"Customer {number:04d}"})
    seen: list[str] = []
    start = 1
    while True:
        page = Customer.where("", order_by="DisplayName", start_position=start, max_results=1000, qb=qb)
        seen.extend(c.DisplayName for c in page)
        if len(page) < 1000:
            break
        start += 1000
    assert len(seen) == 2500 and seen == sorted(seen)
    assert len(Customer.all(qb=qb)) == 100  # MAXRESULTS default
    assert Customer.count(qb=qb) == 2500


def test_invoice_totals_payment_void_replay_cdc_batch(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    server, _, qb = connected
    customer = _customer(qb, "Acme")
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line = [_line(275), _line(12.75), _line(0, qty=5, price=9.5)]
    invoice = invoice.save(qb=qb, request_id="inv-1")
    assert invoice.Line[2].Amount == 47.5
    assert invoice.TxnTaxDetail.TotalTax == 26.82
    assert invoice.TotalAmt == 362.07 and invoice.Balance == 362.07
    assert invoice.DocNumber

    replay = Invoice()
    replay.CustomerRef = customer.to_ref()
    replay.Line = [_line(1)]
    replay = replay.save(qb=qb, request_id="inv-1")  # a different body, but the same requestid
    assert replay.Id == invoice.Id and replay.TotalAmt == 362.07
    assert Invoice.count(qb=qb) == 1

    discounted = Invoice()
    discounted.CustomerRef = customer.to_ref()
    discount = DiscountLine()
    discount.DiscountLineDetail = DiscountLineDetail()
    discount.DiscountLineDetail.PercentBased = True
    discount.DiscountLineDetail.DiscountPercent = 10
    discounted.Line = [_line(35, taxable=False), discount]
    discounted = discounted.save(qb=qb)
    assert discounted.TotalAmt == 31.5
    assert [line.Amount for line in discounted.Line] == [35, 35, 3.5]

    payment = Payment()
    payment.CustomerRef = customer.to_ref()
    payment.TotalAmt = 362.07
    line = PaymentLine()
    line.Amount = 362.07
    link = LinkedTxn()
    link.TxnId, link.TxnType = invoice.Id, "Invoice"
    line.LinkedTxn = [link]
    payment.Line = [line]
    payment = payment.save(qb=qb)
    paid = Invoice.get(invoice.Id, qb=qb)
    assert paid.Balance == 0 and paid.SyncToken == "1"
    assert paid.LinkedTxn[0].TxnId == payment.Id
    assert Customer.get(customer.Id, qb=qb).Balance == 31.5
    with pytest.raises(QuickbooksException) as stale:
        invoice.void(qb=qb)  # SyncToken 0, but the payment bumped it
    assert stale.value.error_code == 5010

    payment.void(qb=qb)
    assert Invoice.get(invoice.Id, qb=qb).Balance == 362.07
    fresh = Invoice.get(discounted.Id, qb=qb)
    fresh.void(qb=qb)
    voided = Invoice.get(discounted.Id, qb=qb)
    assert voided.TotalAmt == 0 and voided.Balance == 0 and voided.PrivateNote.startswith("Voided")

    since = (server.sandbox.clock.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    changes = change_data_capture([Invoice, Customer, Payment], since, qb=qb)
    assert {i.Id for i in changes.Invoice} == {invoice.Id, discounted.Id}
    assert {c.Id for c in changes.Customer} == {customer.Id}
    assert {p.Id for p in changes.Payment} == {payment.Id}

    batch = []
    for number in range(31):
        item = Customer()
        item.DisplayName = f"Batch {number}"
        batch.append(item)
    result = batch_create(batch, qb=qb)  # python-quickbooks splits into 30 + 1
    assert len(result.successes) == 31 and not result.faults
    too_many = {"BatchItemRequest": [{"bId": str(n), "operation": "create", "Customer": {"DisplayName": f"X{n}"}}
                                     for n in range(31)]}  # fmt: skip
    with pytest.raises(QuickbooksException) as refused:
        qb.batch_operation(json.dumps(too_many))
    assert refused.value.error_code == 6000


def test_expired_access_token_is_401(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    server, _, qb = connected
    server.sandbox.advance_clock(3601)
    with pytest.raises(AuthorizationException) as denied:
        Customer.all(qb=qb)
    assert '"fault"' in denied.value.detail and '"code":"3200"' in denied.value.detail


def test_throttled_reaches_python_quickbooks_as_xml(connected: tuple[Running, AuthClient, QuickBooks]) -> None:
    server, _, qb = connected
    server.sandbox.limits.requests_per_minute = 1
    Customer.count(qb=qb)
    with pytest.raises(QuickbooksException) as throttled:
        Customer.count(qb=qb)
    assert "ThrottleExceeded" in throttled.value.message and "statusCode=429" in throttled.value.message
