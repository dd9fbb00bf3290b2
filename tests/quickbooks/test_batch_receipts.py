"""A backlog of sales receipts reaches QuickBooks in batch requests, end to end through the server and the
sandbox; a lone receipt stays one create; a Fault or a lost reply costs nothing twice.

The realm's limiter is replaced by one with a single slot in flight (a "gate"). While the test holds that
slot, the receipts' creates wait in the batcher's queue, as they do behind a binding limit; when it lets go,
the next flusher takes every queued create at once. So the batches formed here do not depend on timing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs

import pytest
from ledgerbridge import Payment
from ledgerbridge.vendor import Limiter, Limiters, LocalLimiter
from ledgerbridge_quickbooks.batcher import batch_request_id
from ledgerbridge_quickbooks.client import BATCH_MAX
from ledgerbridge_quickbooks.sandbox.limits import Observed
from starlette.types import Receive, Scope, Send

from .conftest import Harness, payment, wrap_sandbox

BACKLOG = 6  # fewer than the server's 16 workers, so every one of them is waiting in the queue at once


@dataclass
class Recorded:
    """An ASGI wrapper that records each Accounting API request reaching the sandbox: (method, path, query)."""

    app: Any
    calls: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "/v3/company/" in scope["path"]:
            path = scope["path"].split("/v3/company/", 1)[1].split("/", 1)[1]
            self.calls.append((scope["method"], path, parse_qs(scope["query_string"].decode())))
        await self.app(scope, receive, send)


@pytest.fixture
def recorded(harness: Harness) -> Recorded:
    return wrap_sandbox(harness, Recorded)


def buyer(n: int) -> dict[str, str]:
    return {"email": f"buyer{n}@example.com", "name": f"Buyer {n}"}


async def warm(harness: Harness, customers: int, **extra: Any) -> None:
    """Connected, and each buyer known (a receipt of theirs booked), so a receipt costs one create."""
    await harness.connect()
    for n in range(customers):
        await harness.publish(payment(f"warm-{n}", total="5.00", **buyer(n), **extra))
    await harness.settle()
    await harness.webhooks_delivered()
    assert await harness.dead() == []


def observed(harness: Harness) -> Observed:
    return harness.sandbox.throttle.observed.setdefault(harness.realm, Observed())


def gate(harness: Harness) -> Limiter:
    limiters: Limiters[Limiter] = Limiters(lambda _realm: LocalLimiter(10_000, 60.0, 1))
    harness.service.limiters = limiters
    return limiters.for_realm(harness.realm)


async def backlog(harness: Harness, payments: Sequence[Payment]) -> None:
    """Publish `payments` while the realm's only slot is taken, wait until all their creates are queued, let go."""
    realm_gate = gate(harness)

    def queued() -> bool:
        batcher = harness.service.batchers.realm(harness.realm)
        return batcher is not None and batcher.queued == len(payments)

    async with realm_gate.slot():
        for item in payments:
            await harness.publish(item)
        await harness.until(queued)
    await harness.settle()


def receipts_of(harness: Harness, prefix: str) -> list[str]:
    return sorted(r["PaymentRefNum"] for r in harness.rows("SalesReceipt") if r["PaymentRefNum"].startswith(prefix))


async def test_a_backlog_of_receipts_goes_out_in_one_batch_request(harness: Harness, recorded: Recorded) -> None:
    await warm(harness, BACKLOG)
    seen, batches, items = len(recorded.calls), observed(harness).batches, observed(harness).batch_items
    await backlog(harness, [payment(f"b-{n}", total=f"{10 + n}.00", **buyer(n)) for n in range(BACKLOG)])
    assert await harness.dead() == []
    assert receipts_of(harness, "ch_b-") == sorted(f"ch_b-{n}" for n in range(BACKLOG))
    calls = recorded.calls[seen:]
    sent = [(method, path) for method, path, _ in calls if method == "POST"]
    assert sent == [("POST", "batch")], calls  # no single create: all six in one request
    assert (observed(harness).batches - batches, observed(harness).batch_items - items) == (1, BACKLOG)
    query = next(q for method, path, q in calls if path == "batch")
    assert len(query["requestid"][0]) <= 36
    # each receipt is its payment's, for its own customer
    customers = {c["Id"]: c["PrimaryEmailAddr"]["Address"] for c in harness.rows("Customer")}
    for receipt in harness.rows("SalesReceipt"):
        if receipt["PaymentRefNum"].startswith("ch_b-"):
            n = int(receipt["PaymentRefNum"].removeprefix("ch_b-"))
            assert customers[receipt["CustomerRef"]["value"]] == buyer(n)["email"]
            assert str(receipt["TotalAmt"]) in (f"{10 + n}.0", f"{10 + n}", f"{10 + n}.00")


async def test_a_lone_receipt_is_one_create_with_its_own_requestid(harness: Harness, recorded: Recorded) -> None:
    await warm(harness, 1)
    seen, batches = len(recorded.calls), observed(harness).batches
    await harness.publish(payment("lone", total="12.00", **buyer(0)))
    await harness.settle()
    assert await harness.dead() == []
    calls = recorded.calls[seen:]
    assert [(method, path) for method, path, _ in calls] == [("POST", "salesreceipt")], calls
    assert calls[0][2]["requestid"][0].endswith("-receipt")
    assert observed(harness).batches == batches
    assert receipts_of(harness, "ch_lone") == ["ch_lone"]


async def test_one_items_fault_dead_letters_only_that_payment(harness: Harness) -> None:
    await warm(harness, BACKLOG)
    await harness.publish(payment("warm-check", total="5.00", method="check", **buyer(0)))
    await harness.settle()
    check = next(r for r in harness.rows("SalesReceipt") if r["PaymentRefNum"] == "ch_warm-check")
    card = next(r for r in harness.rows("SalesReceipt") if r["PaymentRefNum"] == "ch_warm-0")
    assert check["PaymentMethodRef"]["value"] != card["PaymentMethodRef"]["value"]
    # the user makes the "Check" payment method inactive in QuickBooks: a receipt naming it gets a 2500 Fault
    harness.sandbox.company(harness.realm).table("PaymentMethod")[check["PaymentMethodRef"]["value"]]["Active"] = False
    items = observed(harness).batch_items
    payments = [payment(f"f-{n}", total="20.00", method="check" if n == 3 else "card", **buyer(n))
                for n in range(BACKLOG)]  # fmt: skip
    await backlog(harness, payments)
    assert observed(harness).batch_items - items >= BACKLOG  # the faulty one went in the batch with the others
    assert receipts_of(harness, "ch_f-") == sorted(f"ch_f-{n}" for n in range(BACKLOG) if n != 3)
    dead = await harness.dead()
    assert len(dead) == 1 and "2500" in dead[0], dead  # as a single create's Fault: retried once, then dead


async def test_a_batch_whose_reply_was_lost_is_replayed_not_performed_again(harness: Harness) -> None:
    await warm(harness, BACKLOG)
    batches = observed(harness).batches
    harness.sandbox.faults.drop_writes = 1  # the sandbox performs the batch, then drops the connection
    await backlog(harness, [payment(f"d-{n}", total="30.00", **buyer(n)) for n in range(BACKLOG)])
    assert await harness.dead() == []
    assert receipts_of(harness, "ch_d-") == sorted(f"ch_d-{n}" for n in range(BACKLOG))  # each exactly once
    assert observed(harness).batches - batches == 2  # the batch, and its resend with the same requestid


async def test_a_lost_batch_reply_is_found_by_the_markers_when_not_resent(harness: Harness) -> None:
    await warm(harness, BACKLOG)
    harness.service.limits = replace(harness.service.limits, max_attempts=1)  # no resend: the pipeline retries
    batches = observed(harness).batches
    harness.sandbox.faults.drop_writes = 1
    await backlog(harness, [payment(f"m-{n}", total="40.00", **buyer(n)) for n in range(BACKLOG)])
    assert await harness.dead() == []
    assert receipts_of(harness, "ch_m-") == sorted(f"ch_m-{n}" for n in range(BACKLOG))  # each exactly once
    assert observed(harness).batches - batches == 1  # nothing was sent again
    found = [m for m in await harness.activity() if "reply was lost" in m and "SalesReceipt" in m]
    assert len(found) == BACKLOG, found


def test_a_batch_requestid_is_at_most_36_characters_and_the_same_for_the_same_items() -> None:
    ids = [f"{'k' * 40}-{n}-receipt" for n in range(BATCH_MAX)]
    assert len(batch_request_id(ids)) <= 36
    assert batch_request_id(ids) == batch_request_id(reversed(ids))
    assert batch_request_id(ids) != batch_request_id(ids[:-1])
