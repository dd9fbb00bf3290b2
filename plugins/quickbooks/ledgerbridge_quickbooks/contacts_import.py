"""Customers → CRM contacts: the initial import (pages of 1000, checkpointed), then CDC reconciliation.

Webhooks bring new and changed customers within seconds (see webhooks.py); the reconciler catches what a
webhook missed. Each published ContactSync has external id `customer:<Id>:<LastUpdatedTime>:<SyncToken>`, so a change
re-syncs and repeats (webhook plus CDC) collapse into one event.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from ledgerbridge import AccountContext, ContactSync

from . import customers, errors, wire
from .client import QuickBooksClient, quote_value
from .service import Service

IMPORT_CURSOR = "contact_import"
WATERMARK_CURSOR = "cdc_watermark"
CONTACT_LINK = "contact"
CDC_DAYS = 30
CDC_MARGIN = timedelta(hours=12)
OVERLAP = timedelta(seconds=60)  # go to a full query a little before Intuit's 30-day limit


class ImportState(msgspec.Struct, kw_only=True):
    next_position: int = 1
    done: bool = False
    total: int | None = None
    imported: int = 0
    started: str | None = None  # server time when the import began: the first CDC watermark


async def import_state(ctx: AccountContext) -> ImportState | None:
    raw = await ctx.get_cursor(IMPORT_CURSOR)
    return msgspec.json.decode(raw, type=ImportState) if raw else None


async def _save(ctx: AccountContext, state: ImportState) -> None:
    await ctx.set_cursor(IMPORT_CURSOR, msgspec.json.encode(state).decode())


async def restart_import(ctx: AccountContext) -> None:
    """After a new connection: import every customer again (published versions dedupe)."""
    state = await import_state(ctx)
    if state is None or not state.done:
        await _save(ctx, ImportState())


class _Links:
    """The links a batch of customers writes: the `contact` version marks and the customer directory's new
    e-mails, each kind in one transaction (an import page: two commits, not two per customer)."""

    def __init__(self) -> None:
        self.contacts: list[tuple[str, str, dict[str, Any]]] = []
        self.directory: dict[str, str] = {}  # e-mail → customer id

    async def write(self, ctx: AccountContext) -> None:
        await ctx.put_links(CONTACT_LINK, self.contacts)
        await ctx.put_links(customers.LINK, ((email, id_, {}) for email, id_ in self.directory.items()))
        self.contacts, self.directory = [], {}


async def publish_customer(ctx: AccountContext, customer: wire.Customer, kind: str | None = None) -> bool:
    links = _Links()
    is_new = await _publish(ctx, customer, kind, links)
    await links.write(ctx)
    return is_new


async def _publish(ctx: AccountContext, customer: wire.Customer, kind: str | None, links: _Links) -> bool:
    """Publish one customer's ContactSync; its links go into `links`, which the caller writes."""
    if not customer.Id:
        return False
    version = customer.MetaData.LastUpdatedTime if customer.MetaData else None
    created = customer.MetaData.CreateTime if customer.MetaData else None
    if kind is None:
        kind = "created" if customer.SyncToken in ("0", None) and created == version else "updated"
    if customer.Active is False and kind != "merged":
        kind = "deleted"
    event = ContactSync(kind=kind, contact=customers.to_contact(customer), source_id=customer.Id)  # type: ignore[arg-type, unused-ignore]
    # LastUpdatedTime has whole seconds: the SyncToken tells apart two changes within one second
    is_new = await ctx.publish(event, external_id=f"customer:{customer.Id}:{version}:{customer.SyncToken}")
    links.contacts.append((customer.Id, customer.Id, {"version": version}))
    # the customer directory (customers.resolve): later payments from this e-mail find the customer
    email = (customer.email or "").strip().lower()
    if email:
        if customer.Active is False:
            listed = await ctx.get_link(customers.LINK, email)
            if listed is not None and listed.remote_id == customer.Id:
                await ctx.delete_link(customers.LINK, email)  # made inactive: no longer the e-mail's customer
        elif email not in links.directory and await ctx.get_link(customers.LINK, email) is None:
            links.directory[email] = customer.Id  # the first customer with this e-mail, as before
    return bool(is_new)


async def run(ctx: AccountContext, service: Service) -> None:
    """One tick of the background task: continue the import, or reconcile through CDC once it is done."""
    try:
        await service.tokens.connection(ctx)
    except errors.ReauthorizationNeeded:
        return  # not connected: nothing to import
    async with service.lock(ctx.account_id, "contacts"):
        state = await import_state(ctx) or ImportState()
        client = await service.client(ctx)
        if not state.done:
            await _import(ctx, client, state)
        else:
            await _reconcile(ctx, client)


async def _import(ctx: AccountContext, client: QuickBooksClient, state: ImportState) -> None:
    if state.started is None or state.total is None:
        total, server_time = await client.count("SELECT COUNT(*) FROM Customer")
        state.total, state.started = total, state.started or server_time or _iso(datetime.now(UTC))
        await _save(ctx, state)
    async for position, rows in client.pages(
        wire.Customer, "SELECT * FROM Customer ORDERBY Id", start=state.next_position
    ):
        links = _Links()
        for customer in rows:
            await _publish(ctx, customer, "imported", links)
        await links.write(ctx)  # before the cursor moves on: a restart re-imports the page (versions dedupe)
        state.imported += len(rows)
        state.next_position = position + len(rows)
        await _save(ctx, state)  # a restart resumes at the next page
    state.done = True
    await _save(ctx, state)
    if await ctx.get_cursor(WATERMARK_CURSOR) is None:
        await ctx.set_cursor(WATERMARK_CURSOR, state.started)
    await ctx.log(f"imported {state.imported} QuickBooks customers as contacts")


async def _reconcile(ctx: AccountContext, client: QuickBooksClient) -> None:
    watermark = await ctx.get_cursor(WATERMARK_CURSOR)
    if watermark is None:
        return
    since = _parse(watermark)
    if since is None or since < datetime.now(UTC) - timedelta(days=CDC_DAYS) + CDC_MARGIN:
        await _full_query(ctx, client, watermark)
        return
    # overlap: LastUpdatedTime has whole seconds and clocks drift; repeats dedupe by version
    rows, server_time = await client.cdc(wire.Customer, _iso(since - OVERLAP))
    latest = watermark
    for customer in rows:
        if customer.status == "Deleted":
            continue
        await publish_customer(ctx, customer)
        stamp = customer.MetaData.LastUpdatedTime if customer.MetaData else None
        latest = max(latest, stamp or latest)
    # a full CDC page may have left changes behind: continue from the last one seen, else from the reply time
    await ctx.set_cursor(WATERMARK_CURSOR, latest if len(rows) >= 1000 else (server_time or latest))


async def _full_query(ctx: AccountContext, client: QuickBooksClient, watermark: str) -> None:
    """The watermark is too old for CDC: query by LastUpdatedTime instead."""
    _, server_time = await client.count("SELECT COUNT(*) FROM Customer")
    where = f"WHERE MetaData.LastUpdatedTime >= {quote_value(watermark)}" if _parse(watermark) else ""
    text = " ".join(f"SELECT * FROM Customer {where} ORDERBY Id".split())
    async for _, rows in client.pages(wire.Customer, text):
        for customer in rows:
            await publish_customer(ctx, customer)
    await ctx.set_cursor(WATERMARK_CURSOR, server_time or _iso(datetime.now(UTC)))


def _parse(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
