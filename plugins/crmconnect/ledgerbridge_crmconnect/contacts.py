"""QuickBooks customers become CRM contacts: found by their link first, by e-mail second.

The link `customer`: QuickBooks customer id → CRM contact id. A linked contact is updated in place (PUT), so
an e-mail changed in QuickBooks changes the contact's e-mail instead of making a second contact. Without a
link the location's contact directory (`directory.py`) says whether a contact has the customer's e-mail, without
a CRM call: if so it is updated through the upsert without names, if not the upsert creates it with them (one
call either way; HighLevel's upsert matches e-mail in any letter case first, then phone, so neither path makes
a duplicate). Without a directory the contact is searched for by e-mail first (two calls).

The CRM owns its contacts' names: an existing contact is never renamed from QuickBooks (first, last,
full or company name); a new contact takes the customer's name (without the e-mail QuickBooks may have
added to make its DisplayName unique). Request bodies carry only the fields HighLevel's DTO declares for
the operation (UpdateContactDto has no companyName). A customer made inactive in QuickBooks (its "delete")
keeps its CRM contact (the CRM owns people and their history), which gets the tag `quickbooks-inactive`,
removed again when the customer is active once more; a merged customer's link moves to the survivor.
"""

from __future__ import annotations

from typing import Any

from ledgerbridge import AccountContext, Contact, ContactSync, Skip

from ledgerbridge_crmconnect import directory
from ledgerbridge_crmconnect.client import CrmApiError, CrmClient
from ledgerbridge_crmconnect.wire import ContactWire, contact_response, upsert_response

CUSTOMER_LINK = "customer"
SOURCE = "QuickBooks"
NAME_FIELDS = frozenset({"firstName", "lastName", "name", "companyName"})
INACTIVE_TAG = "quickbooks-inactive"  # on a contact whose QuickBooks customer was made inactive
# UpdateContactDto's properties (apps/contacts.json): PUT /contacts/{id} refuses any other with 422.
UPDATE_DTO = frozenset({
    "address1", "assignedTo", "city", "country", "customFields", "dateOfBirth", "dnd", "dndSettings", "email",
    "firstName", "inboundDndSettings", "lastName", "name", "phone", "postalCode", "source", "state", "tags",
    "timezone", "website",
})  # fmt: skip


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


async def upsert_existing(client: CrmClient, location_id: str, contact: Contact) -> ContactWire:
    """The contact the directory says has this e-mail, updated through the upsert (one call): the CRM itself
    matches the e-mail, so a directory that is behind (the contact deleted, or given another e-mail, a moment
    ago) never updates the wrong person. Sent without names (the CRM owns those) or `source`; when the upsert
    made a new contact after all, the new contact gets its names (a second call)."""
    body = {"locationId": location_id, **update_fields(contact)}
    response = await client.post("/contacts/upsert", upsert_response, json=body, idempotent=True)
    wire: ContactWire = response.contact
    names = {k: v for k, v in contact_fields(contact).items() if k in NAME_FIELDS and k in UPDATE_DTO}
    if response.new and names:
        raw = await client.request("PUT", f"/contacts/{wire.id}", json=names)
        wire = contact_response.decode(raw).contact or wire
    return wire


def update_fields(contact: Contact) -> dict[str, Any]:
    """What an update may change: UpdateContactDto's fields, never a name (the CRM owns those)."""
    return {k: v for k, v in contact_fields(contact).items() if k in UPDATE_DTO and k not in NAME_FIELDS}


async def update(client: CrmClient, contact_id: str, contact: Contact) -> ContactWire | None:
    """PUT /contacts/{id} without names; None when the contact is gone from the CRM (or refuses the change)."""
    try:
        response = await client.request("PUT", f"/contacts/{contact_id}", json=update_fields(contact))
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


async def sync_contact(
    ctx: AccountContext,
    client: CrmClient,
    location_id: str,
    sync: ContactSync,
    directories: directory.Readiness | None = None,
) -> str | None:
    """Apply one ContactSync; returns the CRM contact id (None when nothing was written)."""
    link = await ctx.get_link(CUSTOMER_LINK, sync.source_id)
    if sync.kind == "deleted":  # QuickBooks never deletes a customer: it makes it inactive
        if link is None:
            raise Skip("a customer made inactive in QuickBooks has no CRM contact here")
        if not await tag(client, link.remote_id, INACTIVE_TAG, add=True):
            await ctx.delete_link(CUSTOMER_LINK, sync.source_id)
            raise Skip("a customer made inactive in QuickBooks whose CRM contact is gone: the link was removed")
        await ctx.put_link(CUSTOMER_LINK, sync.source_id, link.remote_id, **{**link.data, "inactive": True})
        return link.remote_id
    if sync.kind == "merged" and sync.merged_into:
        # The survivor carries on; the merged-away customer's id now means the survivor's contact.
        if link is not None:
            await ctx.delete_link(CUSTOMER_LINK, sync.source_id)
            if await ctx.get_link(CUSTOMER_LINK, sync.merged_into) is None:
                await ctx.put_link(CUSTOMER_LINK, sync.merged_into, link.remote_id)
        raise Skip(f"customer {sync.source_id} was merged into {sync.merged_into}")
    wire: ContactWire | None = None
    email = sync.contact.email.strip() if sync.contact.email else None
    if link is not None:  # the link first: an e-mail changed in QuickBooks follows the same contact
        wire = await update(client, link.remote_id, sync.contact)
        if wire is not None and link.data.get("email") != sync.contact.normalized_email:
            await directory.forget(ctx, location_id, link.data.get("email"), wire.id)
            await directory.remember(ctx, location_id, email, wire.id)
    known: str | directory.Unknown | None = directory.UNKNOWN
    if wire is None and email:
        known = await directory.lookup(ctx, client, location_id, email, directories)  # no CRM call once it is filled
        if isinstance(known, str):
            wire = await upsert_existing(client, location_id, sync.contact)
            if wire.id != known:  # the directory was behind: the CRM matched (or made) another contact
                await directory.forget(ctx, location_id, email, known)
                await directory.remember(ctx, location_id, email, wire.id)
        if known is directory.UNKNOWN:
            existing = await find_by_email(client, location_id, email)
            if existing is not None and existing.id:
                wire = await update(client, existing.id, sync.contact)
                if wire is not None:
                    await directory.remember(ctx, location_id, email, wire.id)
    if wire is None:
        # The upsert keeps to the location's duplicate rule (e-mail first), so a contact the directory has not
        # heard of yet is updated, never doubled.
        wire = await upsert(client, location_id, sync.contact)
        await directory.remember(ctx, location_id, email, wire.id, absent=known is None)
    reactivated = link is not None and bool(link.data.get("inactive"))
    if reactivated:
        await tag(client, wire.id, INACTIVE_TAG, add=False)
    moved = link is not None and link.data.get("email") != sync.contact.normalized_email
    if link is None or link.remote_id != wire.id or reactivated or moved:
        await ctx.put_link(CUSTOMER_LINK, sync.source_id, wire.id, email=sync.contact.normalized_email)
    return wire.id


async def tag(client: CrmClient, contact_id: str, name: str, *, add: bool) -> bool:
    """Add or remove one tag (TagsDTO); False when the contact is gone from the CRM."""
    try:
        await client.request("POST" if add else "DELETE", f"/contacts/{contact_id}/tags", json={"tags": [name]})
    except CrmApiError as exc:
        if exc.status in (400, 404):
            return False
        raise
    return True
