"""Every request the plugin sends during the flows, checked against Xero's published Accounting OpenAPI."""

from __future__ import annotations

from decimal import Decimal

from ledgerbridge import TaxRate

from ..xero_sandbox.openapi_xero import ACCOUNTING_PREFIX, XERO, Request, accounting, problems
from .conftest import Harness, invoice, line, payment


async def test_the_plugins_requests_match_xero_accounting_openapi(harness: Harness) -> None:
    harness.sandbox.by_name("Demo Company (US)").save_contact({"Name": "Existing", "EmailAddress": "e@example.com"})
    await harness.connect()
    tax = (TaxRate(name="Sales Tax", rate_percent=Decimal("7.5")),)
    await harness.publish(payment("p-1", lines=(line("Course", "1", "100.00", tax),), discount="10.00", tax="6.75"))
    await harness.publish(invoice("i-1", "sent", number="R-1"))
    await harness.publish(invoice("i-1", "updated", number="R-1", lines=(line("Consulting", "3", "50.00"),)))
    await harness.publish(
        invoice("i-1", "partially_paid", number="R-1", lines=(line("Consulting", "3", "50.00"),), paid="50.00")
    )
    await harness.publish(
        invoice("i-1", "voided", number="R-1", lines=(line("Consulting", "3", "50.00"),), paid="50.00")
    )
    await harness.settle()
    await harness.control("POST", "/contacts", {"Name": "Webhook Person", "EmailAddress": "w@example.com"})
    await harness.webhooks_delivered()
    assert await harness.dead() == []
    recorded = [r for r in harness.sandbox.requests if r.path.startswith("/sandbox/xero" + ACCOUNTING_PREFIX)]
    assert {(r.method, r.path.split("/")[5]) for r in recorded} >= {
        ("PUT", "BankTransactions"), ("PUT", "Invoices"), ("POST", "Invoices"), ("PUT", "Payments"), ("POST", "Payments"),
        ("PUT", "Contacts"), ("GET", "Contacts"), ("PUT", "TaxRates"), ("GET", "Organisation"), ("GET", "Accounts")}  # fmt: skip
    failures: list[str] = []
    for r in recorded:
        path = r.path[len("/sandbox/xero") :]
        failures += problems(
            accounting(), "request", Request(XERO, r.method, path, r.query, r.headers, r.body), None, []
        )
        if r.method in ("PUT", "POST"):
            assert r.headers.get("idempotency-key"), f"{r.method} {path} without an Idempotency-Key"
    assert not failures, "\n".join(failures)
