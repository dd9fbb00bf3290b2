"""What a CRM invoice change asks of QuickBooks, whatever order the changes arrive in and however often.

Every change carries the invoice's full state and a version: its `updatedAt` (the time of the change when
absent), then how far along the status is, then the amount paid, so two changes stamped in the same
millisecond still order (a delete keeps the `updatedAt` of the state it deletes). A change older than the
one applied is recorded and ignored, with one exception: a void or delete that came first is *held*
(there is no replica to void yet, and a void alone does not say whether the invoice was ever sent); when
its older "sent" arrives, the replica is created and voided or deleted then, as in-order delivery would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from ledgerbridge import InvoiceChange

State: TypeAlias = Literal["none", "open", "voided", "deleted", "held_voided", "held_deleted"]
Finish: TypeAlias = Literal["void", "delete"]
Version: TypeAlias = tuple[datetime, int, Decimal]

RANK = {"draft": 0, "sent": 1, "payment_processing": 2, "partially_paid": 3, "paid": 4, "void": 5, "deleted": 6}


def version(change: InvoiceChange) -> Version:
    invoice = change.invoice
    return invoice.updated_at or change.occurred_at, RANK.get(_status(change), 1), invoice.amount_paid.amount


def encode_version(value: Version) -> list[str | int]:
    return [value[0].isoformat(), value[1], f"{value[2]:f}"]


def decode_version(value: Any) -> Version | None:
    if not isinstance(value, list) or len(value) != 3:
        return None
    return datetime.fromisoformat(value[0]), int(value[1]), Decimal(value[2])


def _status(change: InvoiceChange) -> str:
    if change.kind == "deleted" or change.invoice.status == "deleted":
        return "deleted"
    if change.kind == "voided" or change.invoice.status == "void":
        return "void"
    return change.invoice.status


def was_sent(change: InvoiceChange) -> bool:
    """Whether this state proves the invoice was sent (a void or delete alone does not)."""
    status = _status(change)
    return change.invoice.amount_paid.amount > 0 or status not in ("draft", "void", "deleted")


@dataclass(frozen=True)
class Plan:
    """The QuickBooks actions, in order: write the replica, record payments, then void or delete it."""

    state: State
    write: bool = False
    pay: bool = False
    finish: Finish | None = None
    advance: bool = True  # store this change's version as the one applied
    ignored: str | None = None  # why nothing is done (recorded in Activity)


def plan(state: State, applied: Version | None, change: InvoiceChange) -> Plan:
    number = change.invoice.number
    if state in ("voided", "deleted"):
        return Plan(state, advance=False, ignored=f"invoice {number} is already {state} in QuickBooks")
    paid = change.invoice.amount_paid.amount > 0
    mine = version(change)
    if applied is not None and mine < applied:
        if state in ("held_voided", "held_deleted") and was_sent(change):
            finish: Finish = "void" if state == "held_voided" else "delete"
            done: State = "voided" if finish == "void" else "deleted"
            return Plan(done, write=True, pay=paid, finish=finish, advance=False)
        return Plan(state, advance=False, ignored=f"a change to invoice {number} older than the one applied")
    status = _status(change)
    if status in ("void", "deleted"):
        finish = "void" if status == "void" else "delete"
        if state == "open":
            return Plan("voided" if finish == "void" else "deleted", pay=paid, finish=finish)
        if paid:  # paid proves it was sent: replicate it, then void (a delete with payments voids too)
            return Plan("voided" if finish == "void" else "deleted", write=True, pay=True, finish=finish)
        return Plan("held_voided" if finish == "void" else "held_deleted")
    if status == "draft" and state != "open":
        return Plan(state, advance=False, ignored=f"invoice {number} was never sent, so it is not in QuickBooks")
    return Plan("open", write=True, pay=True)
