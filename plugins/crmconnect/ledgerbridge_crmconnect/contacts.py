"""QuickBooks customers become CRM contacts: upserted by e-mail, or tracked by a link when they have none.

The link `customer`: QuickBooks customer id → CRM contact id. With a link the contact is updated in place
(PUT); without one it is upserted (HighLevel matches e-mail in any letter case first, then phone), and
the link is recorded. A deleted customer leaves the CRM contact alone (the CRM owns people; it may have
other history) and only forgets the link; a merged customer's link moves to the survivor.
"""

from __future__ import annotations

from typing import Any

from ledgerbridge import AccountContext, Contact, ContactSync, Skip

from ledgerbridge_crmconnect.client import CrmApiError, CrmClient
from ledgerbridge_crmconnect.wire import ContactWire, contact_response, upsert_response

CUSTOMER_LINK = "customer"
SOURCE = "QuickBooks"


def contact_fields(contact: Contact) -> dict[str, Any]:
    """The writable contact fields we know; absent ones are left out so they never clear CRM data."""
    body: dict[str, Any] = {}
    given, family = contact.given_name, contact.family_name
    if not given and not family and contact.name and not contact.company_name:
        given, _, family = contact.name.strip().partition(" ")
    candidates: dict[str, Any] = {
        "firstName": given or None,
        "lastName": family or None,
        "name": contact.name or None,
        "email": contact.email.strip() if contact.email else None,
        "phone": contact.phone,
        "companyName": contact.company_name,
    }
    if contact.address is not None:
        line = ", ".join(p for p in (contact.address.line1, contact.address.line2) if p)
        candidates.update(
            address1=line or None,
            city=contact.address.city,
            state=contact.address.region,
            postalCode=contact.address.postal_code,
            country=contact.address.country,
        )
    body.update({k: v for k, v in candidates.items() if v})
    return body


async def upsert(client: CrmClient, location_id: str, contact: Contact) -> ContactWire:
    """POST /contacts/upsert: HighLevel's duplicate rule finds an existing contact by e-mail, then phone."""
    body = {"locationId": location_id, "source": SOURCE, **contact_fields(contact)}
    response = await client.post("/contacts/upsert", upsert_response, json=body, idempotent=True)
    wire: ContactWire = response.contact
    return wire


async def update(client: CrmClient, contact_id: str, contact: Contact) -> ContactWire | None:
    """PUT /contacts/{id}; None when the contact is gone from the CRM."""
    try:
        response = await client.request("PUT", f"/contacts/{contact_id}", json=contact_fields(contact))
    except CrmApiError as exc:
        if exc.status in (400, 404):
            return None
        raise
    wire = contact_response.decode(response).contact
    return wire


async def find_by_email(client: CrmClient, location_id: str, email: str) -> ContactWire | None:
    found = await client.get(
        "/contacts/search/duplicate", contact_response, params={"locationId": location_id, "email": email}
    )
    contact: ContactWire | None = found.contact
    return contact


async def sync_contact(ctx: AccountContext, client: CrmClient, location_id: str, sync: ContactSync) -> str | None:
    """Apply one ContactSync; returns the CRM contact id (None when nothing was written)."""
    link = await ctx.get_link(CUSTOMER_LINK, sync.source_id)
    if sync.kind == "deleted":
        if link is not None:
            await ctx.delete_link(CUSTOMER_LINK, sync.source_id)
        raise Skip("a customer deleted in QuickBooks is kept in the CRM; the link was removed")
    if sync.kind == "merged" and sync.merged_into:
        # The survivor carries on; the merged-away customer's id now means the survivor's contact.
        if link is not None:
            await ctx.delete_link(CUSTOMER_LINK, sync.source_id)
            if await ctx.get_link(CUSTOMER_LINK, sync.merged_into) is None:
                await ctx.put_link(CUSTOMER_LINK, sync.merged_into, link.remote_id)
        raise Skip(f"customer {sync.source_id} was merged into {sync.merged_into}")
    wire: ContactWire | None = None
    if link is not None and not sync.contact.email:
        wire = await update(client, link.remote_id, sync.contact)
    if wire is None:
        wire = await upsert(client, location_id, sync.contact)
    if link is None or link.remote_id != wire.id:
        await ctx.put_link(CUSTOMER_LINK, sync.source_id, wire.id, email=sync.contact.normalized_email)
    return wire.id
