"""Xero contacts → the CRM: an initial import paged through GET /Contacts, then changes since a watermark
(If-Modified-Since) on every run, besides the webhooks. Each contact becomes a ContactSync event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec
from ledgerbridge import AccountContext, Address, Contact, ContactSync

from . import wire
from .client import XeroClient

if TYPE_CHECKING:
    from .plugin import XeroPlugin

WATERMARK = "contacts_modified_since"
STATE = "contacts_import"
PAGE_SIZE = 100
CLOCK_MARGIN = timedelta(minutes=5)  # our clock against Xero's, when no contact tells us Xero's time
OVERLAP = timedelta(seconds=1)  # stamps are to the millisecond: re-read the boundary, the inbox de-duplicates


class ImportState(msgspec.Struct, kw_only=True):
    done: bool = False
    imported: int = 0
    page: int = 1


async def import_state(ctx: AccountContext) -> ImportState | None:
    raw = await ctx.get_cursor(STATE)
    return msgspec.json.decode(raw, type=ImportState) if raw else None


async def restart(ctx: AccountContext) -> None:
    await ctx.set_cursor(STATE, msgspec.json.encode(ImportState()).decode())
    await ctx.set_cursor(WATERMARK, None)


def to_domain(contact: wire.XContact) -> Contact:
    phone = next((p for p in contact.Phones if p.PhoneNumber), None)
    address = next((a for a in contact.Addresses if a.AddressLine1 or a.City), None)
    return Contact(
        name=contact.Name or " ".join(filter(None, [contact.FirstName, contact.LastName])) or "Xero contact",
        email=contact.EmailAddress or None,
        given_name=contact.FirstName or None,
        family_name=contact.LastName or None,
        phone=" ".join(filter(None, [phone.PhoneCountryCode, phone.PhoneAreaCode, phone.PhoneNumber]))
        if phone
        else None,
        address=Address(
            line1=address.AddressLine1,
            line2=address.AddressLine2,
            city=address.City,
            region=address.Region,
            postal_code=address.PostalCode,
            country=address.Country,
        )
        if address
        else None,
        accounting_id=contact.ContactID,
    )


def sync_event(contact: wire.XContact, kind: str) -> ContactSync:
    if contact.MergedToContactID:
        return ContactSync(
            kind="merged",
            contact=to_domain(contact),
            source_id=contact.ContactID,
            merged_into=contact.MergedToContactID,
        )
    if contact.ContactStatus != "ACTIVE":
        kind = "deleted"
    return ContactSync(kind=kind, contact=to_domain(contact), source_id=contact.ContactID)  # type: ignore[arg-type]


async def publish(ctx: AccountContext, contact: wire.XContact, kind: str) -> bool:
    stamp = contact.UpdatedDateUTC or ""
    return await ctx.publish(sync_event(contact, kind), external_id=f"xero-contact:{contact.ContactID}:{stamp}")


async def run(ctx: AccountContext, plugin: XeroPlugin) -> None:
    if not await plugin.is_connected(ctx):
        return
    client = await plugin.client(ctx)
    state = await import_state(ctx) or ImportState(done=True)
    await _pages(ctx, client, state)


async def _pages(ctx: AccountContext, client: XeroClient, state: ImportState) -> None:
    since = await ctx.get_cursor(WATERMARK)
    newest: datetime | None = None
    started = datetime.fromtimestamp(ctx.now(), UTC) - CLOCK_MARGIN
    kind = "updated" if state.done else "imported"
    page = state.page if not state.done else 1
    while True:
        params = {
            "page": str(page),
            "pageSize": str(PAGE_SIZE),
            "order": "UpdatedDateUTC ASC",
            "includeArchived": "true",
        }
        found = wire.contacts.decode(await client.get("/Contacts", params=params, modified_since=since)).Contacts
        for contact in found:
            await publish(ctx, contact, kind)
            stamp = contact.updated
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
        if not state.done:
            state.imported += len(found)
            state.page = page + 1
            await ctx.set_cursor(STATE, msgspec.json.encode(state).decode())
        if len(found) < PAGE_SIZE:
            break
        page += 1
    if not state.done:
        state.done = True
        await ctx.set_cursor(STATE, msgspec.json.encode(state).decode())
        await ctx.log(f"imported {state.imported} contacts from Xero")
    if newest is not None:
        await ctx.set_cursor(WATERMARK, (newest - OVERLAP).astimezone(UTC).isoformat())
    elif since is None:  # nothing yet: later runs ask only for what changes from now on
        await ctx.set_cursor(WATERMARK, started.isoformat())
