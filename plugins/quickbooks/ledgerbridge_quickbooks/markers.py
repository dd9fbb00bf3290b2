"""Documents the product creates carry a marker, so a write whose reply was lost is found, never repeated.

`requestid` replays a write only while Intuit remembers it (a few days at most), so it cannot protect a dead
letter replayed a month later. Every document created here carries `[ledgerbridge <what> <CRM id>]` in its
PrivateNote, and before creating a document that an earlier attempt may have committed (an intent was
recorded but no link), the plugin looks for it. The query language filters on `TxnDate` and `CustomerRef`
(both filterable on every transaction); the marker is then matched in the rows it returns.

The marker also tells the product's documents from the user's own: a document without it was not created
here and is never modified, voided or deleted.
"""

from __future__ import annotations

from datetime import date

from ledgerbridge import AccountContext

from . import wire
from .batcher import RealmBatcher
from .client import QuickBooksClient, quote_value

INTENT_LINK = "intent"  # "<kind>:<local id>" → the marker of a document about to be created


def marker(what: str, local_id: str) -> str:
    return f"[ledgerbridge {what} {local_id}]"


def note(marker_text: str, *parts: str, limit: int = 4000) -> str:
    """A PrivateNote that starts with the marker (so truncation never cuts it off)."""
    return "; ".join(p for p in (marker_text, *parts) if p)[:limit]


def carries(document: wire.Entity, marker_text: str) -> bool:
    return marker_text in (getattr(document, "PrivateNote", None) or "")


async def find(
    client: QuickBooksClient, kind: type[wire.E], marker_text: str, customer_id: str, txn_date: date | None
) -> wire.E | None:
    """The document of `kind` for this customer (and date) whose PrivateNote carries `marker_text`."""
    text = f"SELECT * FROM {wire.entity_name(kind)} WHERE CustomerRef = {quote_value(customer_id)}"
    if txn_date is not None:
        text += f" AND TxnDate = '{txn_date.isoformat()}'"
    async for _, rows in client.pages(kind, text):
        for row in rows:
            if carries(row, marker_text):
                return row
    return None


async def create_once(
    ctx: AccountContext,
    client: QuickBooksClient,
    body: wire.E,
    *,
    what: str,
    local_id: str,
    request_id: str,
    batcher: RealmBatcher | None = None,
) -> wire.E:
    """Create `body` (whose PrivateNote carries `marker(what, local_id)`), unless an earlier attempt did.

    The intent is recorded before the first create; only when one is found (an attempt that may have been
    committed without a reply, alone or in a batch) does this cost a query. With a `batcher`, the create
    queues there and may go out in a batch with other deliveries' creates.
    """
    marker_text = marker(what, local_id)
    intent = f"{what}:{local_id}"
    customer = getattr(body, "CustomerRef", None)
    customer_id = customer.value if customer is not None else ""
    if await ctx.get_link(INTENT_LINK, intent) is not None and customer_id:
        found = await find(client, type(body), marker_text, customer_id, getattr(body, "TxnDate", None))
        if found is not None:
            await ctx.log(
                f"QuickBooks {wire.entity_name(type(body))} {found.Id} was created by an earlier attempt whose "
                "reply was lost: found by its marker, not created again",
                qbo_id=found.Id,
            )
            return found
    else:
        await ctx.put_link(INTENT_LINK, intent, "", marker=marker_text)
    if batcher is not None:
        return await batcher.create(client, body, request_id)
    return await client.create(body, request_id)
