"""Intuit's webhooks about the integration's own writes ("echoes"), recognised without reading them back.

Every customer, invoice and payment this plugin writes is remembered under link `own_write`
("<Entity>:<Id>") with the `LastUpdatedTime` stamps of its writes. A webhook naming one of them with a
remembered stamp is an echo: what it would tell is already known, so the notification costs no call.

An invoice is *settled* once nothing a webhook says about it can produce a fact any more: its `InvoicePaid`
was published (once per invoice, whoever paid it), or this plugin voided or deleted it. Every later
notification about a settled invoice, and about a payment of ours applied only to settled invoices (a void
unapplies them, which QuickBooks reports as payment updates), is skipped too.

A payment recorded here bumps its invoice in the same request; that invoice update carries the payment's
stamp, so it is remembered for the invoice as well. A change by someone else carries another stamp and is
read as before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ledgerbridge import AccountContext

from . import wire

LINK = "own_write"
MAX_STAMPS = 8


def key(entity: str, entity_id: str) -> str:
    return f"{entity}:{entity_id}"


def stamp_of(entity: wire.Entity) -> str | None:
    return entity.MetaData.LastUpdatedTime if entity.MetaData else None


def instant(stamp: str | None) -> str | None:
    """A stamp as the UTC second it names: Intuit writes `LastUpdatedTime` with the company's offset
    ("2016-10-04T20:09:04-07:00") and a webhook's `lastUpdated` in UTC ("2016-10-05T03:09:04.000Z")."""
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def remember(
    ctx: AccountContext,
    entity: str,
    entity_id: str | None,
    stamp: str | None,
    *,
    settled: bool | None = None,
    **data: Any,
) -> None:
    """Record a write of ours (its stamp, and whether the invoice is settled now)."""
    if not entity_id:
        return
    link = await ctx.get_link(LINK, key(entity, entity_id))
    known: dict[str, Any] = dict(link.data) if link else {}
    stamp = instant(stamp)
    stamps = [s for s in known.get("stamps", []) if s != stamp]
    if stamp:
        stamps.append(stamp)
    known.update(data)
    known["stamps"] = stamps[-MAX_STAMPS:]
    if settled is not None:
        known["settled"] = settled or bool(known.get("settled"))
    await ctx.put_link(LINK, key(entity, entity_id), entity_id, **known)


async def settled(ctx: AccountContext, invoice_id: str) -> bool:
    link = await ctx.get_link(LINK, key("Invoice", invoice_id))
    return bool(link and link.data.get("settled"))


async def is_echo(ctx: AccountContext, entity: str, entity_id: str, stamp: str | None) -> bool:
    """Whether a webhook about `entity_id` (changed at `stamp`) tells nothing new (see the module doc)."""
    link = await ctx.get_link(LINK, key(entity, entity_id))
    if link is None:
        return False
    if entity == "Invoice" and link.data.get("settled"):
        return True
    if stamp and instant(stamp) in link.data.get("stamps", []):
        return True
    if entity == "Payment":
        invoices = [str(i) for i in link.data.get("invoices", [])]
        return bool(invoices) and all([await settled(ctx, i) for i in invoices])
    return False
