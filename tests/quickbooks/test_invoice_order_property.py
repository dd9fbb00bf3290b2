"""Invoice webhooks in any order, any number of times, leave QuickBooks as in-order delivery would.

Each example is one CRM invoice's life (drafted, maybe sent, edited, partly or fully paid, maybe voided or
deleted), its changes delivered shuffled with repeats through the server's pipeline to the QuickBooks
sandbox. What QuickBooks must then show is stated from the CRM's final word alone, not from the plugin:
never sent → nothing; deleted → nothing; voided → a voided invoice; otherwise the final total with the
final amount paid applied to it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerbridge import InvoiceChange
from ledgerbridge.vendor import Limiters, LocalLimiter
from ledgerbridge_quickbooks import markers
from msgspec.structs import replace

from .conftest import Harness, invoice, line, now

_ids = itertools.count(1)


@dataclass(frozen=True)
class Life:
    """One invoice's changes in the order the CRM made them."""

    invoice_id: str
    changes: tuple[InvoiceChange, ...]


@st.composite
def lives(draw: st.DrawFn) -> Life:
    n = next(_ids)
    invoice_id, number = f"prop-{n}", f"P{n}"
    start = now() + timedelta(minutes=10)  # drawn before the first example connects: after the connection
    states: list[tuple[str, str | None, int, Decimal]] = [
        ("updated", "draft", 2, Decimal(0))
    ]  # (kind, status, qty, paid)
    qty = draw(st.integers(1, 4))
    ending = draw(st.sampled_from(["open", "voided", "deleted"]))  # the CRM voids or deletes only unpaid ones
    if draw(st.booleans()):
        states.append(("updated", "draft", qty, Decimal(0)))
    if draw(st.integers(0, 4)):  # usually sent
        states.append(("sent", None, qty, Decimal(0)))
        for _ in range(draw(st.integers(0, 2))):
            qty = draw(st.integers(1, 4))
            states.append(("updated", None, qty, Decimal(0)))
        total, paid = Decimal(qty * 50), Decimal(0)
        for _ in range(draw(st.integers(0, 2)) if ending == "open" else 0):
            paid = min(total, paid + Decimal(draw(st.sampled_from([10, 25, 50, 200]))))
            states.append(("paid" if paid == total else "partially_paid", None, qty, paid))
            if paid == total:
                break
    if ending != "open":
        states.append((ending, None, qty, Decimal(0)))
    changes = []
    for i, (kind, status, q, paid) in enumerate(states):
        change = invoice(invoice_id, kind, number=number, status=status, lines=(line("Consulting", str(q), "50.00"),),
                         paid=f"{paid}", created_at=start)  # fmt: skip
        stamped = replace(change.invoice, updated_at=start + timedelta(seconds=i))
        changes.append(replace(change, invoice=stamped, occurred_at=start + timedelta(seconds=i, milliseconds=5)))
    return Life(invoice_id, tuple(changes))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[Life, list[int]]:
    life = draw(lives())
    order = draw(st.permutations(range(len(life.changes))))
    repeats = draw(st.lists(st.sampled_from(range(len(life.changes))), max_size=3))
    arrival = list(order)
    for index in repeats:
        arrival.insert(draw(st.integers(0, len(arrival))), index)
    return life, arrival


def expected(life: Life) -> dict[str, Any] | None:
    """What in-order delivery leaves in QuickBooks, from the CRM's final word (and whether it was ever sent)."""
    final = life.changes[-1]
    ever_sent = any(c.invoice.status not in ("draft", "void", "deleted") for c in life.changes)
    if not ever_sent or final.kind == "deleted":
        return None
    if final.kind == "voided":
        return {"total": Decimal(0), "balance": Decimal(0), "paid": Decimal(0), "voided": True}
    total, paid = final.invoice.total.amount, final.invoice.amount_paid.amount
    return {"total": total, "balance": total - paid, "paid": paid, "voided": False}


def actual(harness: Harness, life: Life) -> dict[str, Any] | None:
    marker = markers.marker("invoice", life.invoice_id)
    found = [row for row in harness.rows("Invoice") if marker in row.get("PrivateNote", "")]
    assert len(found) <= 1, found
    if not found:
        return None
    row = found[0]
    paid = sum(
        (Decimal(str(line["Amount"])) for p in harness.rows("Payment") for line in p.get("Line", [])
         if any(link["TxnId"] == row["Id"] for link in line.get("LinkedTxn", []))),
        Decimal(0),
    )  # fmt: skip
    return {"total": Decimal(str(row["TotalAmt"])), "balance": Decimal(str(row["Balance"])), "paid": paid,
            "voided": row.get("PrivateNote", "").startswith("Voided")}  # fmt: skip


@pytest.mark.slow
@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
async def test_shuffled_and_repeated_invoice_webhooks_reach_the_in_order_state(
    harness: Harness, case: tuple[Life, list[int]]
) -> None:
    if not harness.realm:  # one connected company for every example; each example is its own invoice
        await harness.connect()
        # thousands of calls: lift the per-minute limit on both sides (what is tested is order, not pace)
        harness.sandbox.limits.requests_per_minute = 1_000_000
        harness.service.limiters = Limiters(lambda _realm: LocalLimiter(1_000_000, 60.0, 10))
    life, arrival = case
    for index in arrival:  # each arrival is its own inbox event (a retry, or the poller and a webhook)
        await harness.publish(life.changes[index])
    await harness.settle()
    assert await harness.dead() == []
    assert actual(harness, life) == expected(life), [life.changes[i].kind for i in arrival]
