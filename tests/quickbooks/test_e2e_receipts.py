"""Payments → sales receipts, end to end through the server, the pipeline and the QuickBooks sandbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote_plus

import pytest
from ledgerbridge import Refund
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from .conftest import Harness, line, now, payment, usd, wrap_sandbox


async def test_connect_binds_the_realm_and_the_card_shows_the_company(harness: Harness) -> None:
    result = await harness.connect()
    assert result["connected"] == "1"
    ctx = await harness.runtime.plugin_context("quickbooks").account_for_external_id(harness.realm)
    assert ctx is not None and ctx.account_id == "acme"
    card = await harness.runtime.plugins.card("quickbooks", ctx)
    assert card is not None and card.status == "connected" and card.title == "QuickBooks Online"
    fields = {f.label: f.value for f in card.fields}
    assert fields["Realm"] == harness.realm and fields["Company"] == "Sandbox Company_US_1"
    assert [a.label for a in card.actions] == ["QB Connect", "Disconnect"]


async def test_receipt_for_a_new_then_a_known_customer_matches_the_crm_total(harness: Harness) -> None:
    await harness.connect()
    lines = (line("Workshop seat", "3", "33.33"), line("Handbook", "1", "19.99"))
    await harness.publish(payment("pay-1", lines=lines, discount="10.00", tax="8.87"))
    await harness.publish(payment("pay-2", email="ADA@Example.COM", lines=(line("Handbook", "2", "19.99"),)))
    await harness.settle()
    assert await harness.dead() == []
    customers = harness.rows("Customer")
    assert [c["DisplayName"] for c in customers] == ["Ada Lovelace"]
    receipts = sorted(harness.rows("SalesReceipt"), key=lambda r: r["PaymentRefNum"])
    # 3 × 33.33 + 19.99 − 10.00 + 8.87 (tax and discount folded into the US item prices)
    assert [Decimal(str(r["TotalAmt"])) for r in receipts] == [Decimal("118.85"), Decimal("39.98")]
    assert all(line["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "NON" for r in receipts for line in r["Line"]
               if line["DetailType"] == "SalesItemLineDetail")  # fmt: skip
    assert {r["CustomerRef"]["value"] for r in receipts} == {customers[0]["Id"]}
    assert receipts[0]["PaymentRefNum"] == "ch_pay-1"
    names = {line["SalesItemLineDetail"]["ItemRef"]["name"] for r in receipts for line in r["Line"]
             if line["DetailType"] == "SalesItemLineDetail"}  # fmt: skip
    assert names == {"Workshop seat", "Handbook"}
    assert len([i for i in harness.rows("Item") if i["Name"] == "Handbook"]) == 1


async def test_two_emails_with_one_name_make_two_readable_customers(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-1", email="ada@example.com", total="10.00"))
    await harness.settle()
    await harness.publish(payment("p-2", email="ada@work.example", total="12.00"))
    await harness.publish(payment("p-3", email="ada@home.example", total="14.00"))
    await harness.settle()
    assert await harness.dead() == []
    names = sorted(c["DisplayName"] for c in harness.rows("Customer"))
    assert names == ["Ada Lovelace", "Ada Lovelace (ada@home.example)", "Ada Lovelace (ada@work.example)"]
    assert len(harness.rows("SalesReceipt")) == 3


async def _ada_pays_once_quickbooks_has_her_as(harness: Harness, display_name: str) -> dict[str, Any]:
    """A customer made in QuickBooks after the connection (its webhook not yet arrived), then her payment from
    the CRM under another case of her e-mail: it is booked on that customer, whose record is returned."""
    existing = harness.sandbox.books(harness.realm).create(
        "Customer", {"DisplayName": display_name, "PrimaryEmailAddr": {"Address": "Ada@Example.com"}}
    )
    await harness.publish(payment("p-1", email="ada@EXAMPLE.com", total="5.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.rows("SalesReceipt")[0]["CustomerRef"]["value"] == existing["Id"]
    return existing


async def test_an_existing_quickbooks_customer_is_matched_by_email_in_any_case(harness: Harness) -> None:
    await harness.connect()
    await _ada_pays_once_quickbooks_has_her_as(harness, "Ada Lovelace")
    assert len(harness.rows("Customer")) == 1


async def test_a_customer_made_in_quickbooks_since_the_import_gets_the_receipt_and_a_second_one_is_made_inactive(
    harness: Harness,
) -> None:
    """The customer's webhook is still on the way: the batch that asks for the e-mail also made a customer under
    the contact's own name, which is made inactive at once and never reaches the CRM."""
    await harness.connect()
    existing = await _ada_pays_once_quickbooks_has_her_as(harness, "Lovelace, Ada")
    active = [c for c in harness.rows("Customer") if c.get("Active", True)]
    assert [c["Id"] for c in active] == [existing["Id"]]
    [withdrawn] = [c for c in harness.rows("Customer") if not c.get("Active", True)]
    assert withdrawn["DisplayName"] == "Ada Lovelace" and not harness.rows("SalesReceipt")[1:]
    assert any("made inactive" in line and existing["Id"] in line for line in await harness.activity())
    assert withdrawn["Id"] not in {sync.source_id for sync in harness.crm.contacts}
    # later payments from the e-mail go straight to the existing customer
    await harness.publish(payment("p-2", email="ada@example.com", total="6.00"))
    await harness.settle()
    assert {r["CustomerRef"]["value"] for r in harness.rows("SalesReceipt")} == {existing["Id"]}
    assert len(harness.rows("Customer")) == 2


async def test_a_new_customers_batch_whose_reply_was_lost_makes_one_customer(harness: Harness) -> None:
    await harness.connect()
    harness.sandbox.faults.drop_writes = 1  # the batch that asks for the e-mail and creates the customer
    await harness.publish(payment("p-1", email="new@example.com", name="New Buyer", total="25.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.sandbox.faults.drop_writes == 0
    assert [c["DisplayName"] for c in harness.rows("Customer")] == ["New Buyer"]
    assert [r["CustomerRef"]["value"] for r in harness.rows("SalesReceipt")] == [harness.rows("Customer")[0]["Id"]]


@dataclass
class ImportRefused:
    """An ASGI wrapper around the sandbox that answers the contact import's count of customers with a 503."""

    app: Any
    refused: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "COUNT(*) FROM Customer" in unquote_plus(scope.get("query_string", b"").decode()):
            self.refused += 1
            await JSONResponse({"Fault": {"Error": [{"code": "3001"}], "type": "SystemFault"}}, 503)(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)


async def test_before_the_import_has_listed_every_customer_an_unknown_email_is_asked_before_any_create(
    harness: Harness,
) -> None:
    refusing = wrap_sandbox(harness, ImportRefused)
    await harness.connect(wait_for_import=False)
    await harness.until(lambda: refusing.refused > 0)
    existing = await _ada_pays_once_quickbooks_has_her_as(harness, "Lovelace, Ada")
    assert not await harness.imported()
    assert [c["Id"] for c in harness.rows("Customer")] == [existing["Id"]]


async def test_a_refund_becomes_one_refund_receipt(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-1", total="40.00"))
    await harness.settle()
    refund = Refund(refund_id="re-1", amount=usd("15.00"), refunded_at=now() + timedelta(minutes=1))
    await harness.publish(payment("p-1", total="40.00", refunds=(refund,)), external_id="p-1-refund-1")
    await harness.publish(payment("p-1", total="40.00", refunds=(refund,)), external_id="p-1-refund-1-again")
    await harness.settle()
    assert await harness.dead() == []
    assert len(harness.rows("SalesReceipt")) == 1
    refunds = harness.rows("RefundReceipt")
    assert [Decimal(str(r["TotalAmt"])) for r in refunds] == [Decimal("15.00")]


async def test_a_write_whose_reply_was_lost_is_retried_into_one_document(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-0", total="1.00"))  # customer and item exist first
    await harness.settle()
    harness.sandbox.faults.drop_writes = 1
    await harness.publish(payment("p-1", total="25.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.sandbox.faults.drop_writes == 0
    assert sorted(Decimal(str(r["TotalAmt"])) for r in harness.rows("SalesReceipt")) == [
        Decimal("1.00"),
        Decimal("25.00"),
    ]


@pytest.mark.slow
async def test_a_429_storm_creates_every_document_once(harness: Harness) -> None:
    await harness.connect()
    # one per payment, most of them on the new customers' batches: every retry of a batch takes a slot of
    # Intuit's 120 batches a minute (2 a second), as well as of its 500 requests
    harness.sandbox.faults.statuses.extend([429] * 12)
    for n in range(12):
        await harness.publish(payment(f"p-{n}", email=f"buyer{n % 4}@example.com", name=f"Buyer {n % 4}",
                                      total=f"{n + 1}.00"))  # fmt: skip
    await harness.settle(timeout=60)
    assert await harness.dead() == []
    receipts = harness.rows("SalesReceipt")
    assert sorted(r["PaymentRefNum"] for r in receipts) == sorted(f"ch_p-{n}" for n in range(12))
    assert len(harness.rows("Customer")) == 4
    assert not harness.sandbox.faults.statuses


async def test_an_access_token_expiring_mid_run_is_refreshed_exactly_once(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-0", total="1.00"))
    await harness.settle()
    before = harness.service.tokens.refreshes
    harness.sandbox.advance_clock(3700)  # the access token is now expired at Intuit
    for n in range(1, 11):
        await harness.publish(payment(f"p-{n}", total=f"{n}.00"))
    await harness.settle()
    assert await harness.dead() == []
    assert harness.service.tokens.refreshes - before == 1
    assert len(harness.rows("SalesReceipt")) == 11


async def test_invalid_grant_pauses_then_reconnect_syncs_every_document_once(harness: Harness) -> None:
    await harness.connect()
    await harness.publish(payment("p-0", total="1.00"))
    await harness.settle()
    for grant in harness.sandbox.tokens.grants.values():
        grant.revoked = True  # the user disconnected the app in QuickBooks
    for n in range(1, 6):
        await harness.publish(payment(f"p-{n}", total=f"{n}.00"))
    await harness.until(lambda: _paused(harness))
    state = await harness.runtime.store.get_plugin_state("acme", "quickbooks")
    assert state.paused_reason and "invalid_grant" in state.paused_reason
    ctx = await harness.runtime.plugin_context("quickbooks").account("acme")
    assert ctx is not None
    card = await harness.runtime.plugins.card("quickbooks", ctx)
    assert card is not None and card.status == "reconnect_needed" and card.actions[0].label == "Reconnect"
    await harness.connect()
    await harness.settle()
    assert await harness.dead() == []
    assert sorted(r["PaymentRefNum"] for r in harness.rows("SalesReceipt")) == sorted(f"ch_p-{n}" for n in range(6))


async def _paused(harness: Harness) -> bool:
    state = await harness.runtime.store.get_plugin_state("acme", "quickbooks")
    return state.paused_reason is not None


async def test_payments_before_the_connection_are_skipped(harness: Harness) -> None:
    early = payment("p-early", total="3.00")
    await harness.connect()
    await harness.publish(early)
    assert (await harness.settle()).get("skipped") == 1
    assert harness.rows("SalesReceipt") == []
