"""xero-python, Xero's official SDK generated from the same OpenAPI, runs unchanged against the sandbox:
only its hosts are pointed at it (base_url, and the token URL it keeps as a class attribute)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
from ledgerbridge.testing import serve_in_thread
from ledgerbridge_xero.sandbox import Sandbox, create_app
from xero_python.accounting import Account as XeroAccount
from xero_python.accounting import (
    AccountingApi,
    Contact,
    Contacts,
    Invoice,
    Invoices,
    LineAmountTypes,
    LineItem,
    Payment,
    Payments,
)
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import AccountingBadRequestException
from xero_python.identity import IdentityApi

from .conftest import CLIENT_ID, CLIENT_SECRET, connect, make_config


@pytest.fixture
def served() -> Iterator[tuple[str, Sandbox]]:
    app = create_app(make_config())
    with serve_in_thread(app) as url:
        app.state.sandbox.config.base_url = url
        yield url, app.state.sandbox


def _tokens(url: str, sandbox: Sandbox) -> dict[str, object]:
    async def walk() -> dict[str, object]:
        async with httpx.AsyncClient(base_url=url) as http:
            return (await connect(http, sandbox)).tokens

    return asyncio.run(walk())


def test_xero_python_creates_contacts_invoices_and_payments_and_refreshes(served: tuple[str, Sandbox],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    url, sandbox = served
    monkeypatch.setattr(TokenApi, "refresh_token_url", f"{url}/connect/token")
    stored = dict(_tokens(url, sandbox))
    client = ApiClient(Configuration(oauth2_token=OAuth2Token(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)),
                       pool_threads=1, oauth2_token_getter=lambda: stored, oauth2_token_saver=stored.update)  # fmt: skip
    tenant_id = IdentityApi(client, base_url=url).get_connections()[0].tenant_id
    api = AccountingApi(client, base_url=f"{url}/api.xro/2.0")

    made = api.create_contacts(tenant_id, Contacts(contacts=[Contact(name="Ada Lovelace", email_address="ada@example.com")]),
                               idempotency_key="sdk-contact-1")  # fmt: skip
    contact_id = made.contacts[0].contact_id
    found = api.get_contacts(tenant_id, where='EmailAddress=="ada@example.com"')
    assert [c.name for c in found.contacts] == ["Ada Lovelace"]
    with pytest.raises(AccountingBadRequestException) as refused:
        api.create_contacts(tenant_id, Contacts(contacts=[Contact(name="Ada Lovelace")]))
    assert b"already assigned to another contact" in refused.value.body

    line = LineItem(description="Consulting", quantity=2.0, unit_amount=60.0, account_code="200", tax_type="TAX001",
                    discount_rate=10.0)  # fmt: skip
    invoice = Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), line_items=[line], date=dt.date(2024, 3, 1),
                      due_date=dt.date(2024, 3, 31), line_amount_types=LineAmountTypes.EXCLUSIVE, status="AUTHORISED")  # fmt: skip
    created = api.create_invoices(tenant_id, Invoices(invoices=[invoice]), idempotency_key="sdk-invoice-1").invoices[0]
    assert (created.sub_total, created.total_tax, created.total) == (Decimal("108"), Decimal("8.91"), Decimal("116.91"))
    assert created.date == dt.date(2024, 3, 1)

    payment = Payment(invoice=Invoice(invoice_id=created.invoice_id), account=XeroAccount(code="090"),
                      date=dt.date(2024, 3, 2), amount=116.91)  # fmt: skip
    api.create_payments(tenant_id, Payments(payments=[payment]), idempotency_key="sdk-payment-1")
    paid = api.get_invoice(tenant_id, created.invoice_id).invoices[0]
    assert str(paid.status) in ("PAID", "Status.PAID") and paid.amount_due == 0
    assert paid.fully_paid_on_date == dt.date(2024, 3, 2)

    before = stored["refresh_token"]
    client.refresh_oauth2_token()
    assert stored["refresh_token"] != before
    assert api.get_contact(tenant_id, contact_id).contacts[0].email_address == "ada@example.com"
