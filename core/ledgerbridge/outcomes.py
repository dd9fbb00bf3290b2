"""What a delivery made or changed at the vendor, said in the user's words, with a link to it.

A plugin records an `Outcome` from an event hook (`await ctx.record_outcome(Outcome(...))`); the core keeps it
in the activity log beside the delivery, and Activity shows it after the event's own words:
"Payment $198.50 · Grace Hopper · order form → <the books' receipt 1001>".
"""

from __future__ import annotations

from typing import Any

import msgspec

#: the key of an activity entry's data that holds an outcome
OUTCOME_KEY = "outcome"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    #: the document at the vendor, as its users call it: "<Vendor> sales receipt 1001"
    document: str
    #: where the user can open it: the vendor's web app, or the sandbox's page (http or https only)
    url: str | None = None
    #: what happened to it, when not simply made: "payment of 300.00 recorded, balance 0.00"
    note: str | None = None


def outcome_of(data: dict[str, Any]) -> Outcome | None:
    """The outcome kept in an activity entry's data, or None (absent or unreadable)."""
    raw = data.get(OUTCOME_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return msgspec.convert(raw, Outcome)
    except msgspec.ValidationError:
        return None
