"""CRM people → Xero contacts: matched by e-mail (a `where` filter), created when absent; Xero's rule that
active contact names are unique is met by adding the e-mail, then a counter, to the name."""

from __future__ import annotations

from typing import Any

from ledgerbridge import AccountContext, Contact

from . import errors, wire
from .client import XeroClient

LINK = "contact"  # CRM e-mail (or "name:<name>") → Xero ContactID
TAKEN = "already assigned to another contact"
MAX_NAME = 255


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def find_by_email(client: XeroClient, email: str) -> wire.XContact | None:
    where = f"EmailAddress!=null&&EmailAddress.ToLower()=={_quoted(email.lower())}"
    found = wire.contacts.decode(await client.get("/Contacts", params={"where": where})).Contacts
    active = [c for c in found if c.ContactStatus == "ACTIVE"]
    candidates = active or found
    return candidates[0] if candidates else None


async def find_by_name(client: XeroClient, name: str) -> wire.XContact | None:
    found = wire.contacts.decode(await client.get("/Contacts", params={"where": f"Name=={_quoted(name)}"})).Contacts
    return next((c for c in found if c.ContactStatus == "ACTIVE"), None)


def xero_body(contact: Contact, name: str) -> dict[str, Any]:
    body: dict[str, Any] = {"Name": name[:MAX_NAME]}
    if contact.email:
        body["EmailAddress"] = contact.email.strip()
    if contact.given_name:
        body["FirstName"] = contact.given_name[:255]
    if contact.family_name:
        body["LastName"] = contact.family_name[:255]
    if contact.phone:
        body["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": contact.phone[:50]}]
    if contact.address:
        a = contact.address
        body["Addresses"] = [
            {
                "AddressType": "POBOX",
                "AddressLine1": a.line1,
                "AddressLine2": a.line2,
                "City": a.city,
                "Region": a.region,
                "PostalCode": a.postal_code,
                "Country": a.country,
            }
        ]
    return body


def _names(contact: Contact) -> list[str]:
    base = contact.name.strip() or contact.company_name or contact.email or "CRM customer"
    names = [base]
    if contact.email:
        names.append(f"{base} ({contact.email.strip()})")
    names += [f"{names[-1]} {n}" for n in range(2, 5)]
    return names


async def resolve(ctx: AccountContext, client: XeroClient, contact: Contact, key: str) -> str:
    """The ContactID for this CRM person: the linked one, one found by e-mail, or a new contact."""
    email = contact.normalized_email
    local = email or f"name:{contact.name.strip().lower()}"
    link = await ctx.get_link(LINK, local)
    if link is not None:
        return link.remote_id
    found = await find_by_email(client, email) if email else await find_by_name(client, contact.name.strip())
    if found is None:
        found = await _create(ctx, client, contact, key)
    await ctx.put_link(LINK, local, found.ContactID, name=found.Name)
    return found.ContactID


async def _create(ctx: AccountContext, client: XeroClient, contact: Contact, key: str) -> wire.XContact:
    last: errors.ValidationError | None = None
    for attempt, name in enumerate(_names(contact)):
        try:
            body = {"Contacts": [xero_body(contact, name)]}
            made = wire.contacts.decode(await client.put("/Contacts", body, key=f"{key}:contact:{attempt}")).Contacts[0]
        except errors.ValidationError as exc:
            if not exc.mentions(TAKEN):
                raise
            last = exc
            continue
        if attempt:
            await ctx.log(
                f"Xero already has an active contact named {contact.name!r}: created {name!r} instead", level="warning"
            )
        return made
    assert last is not None
    raise last
