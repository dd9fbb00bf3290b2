"""Find or create the QuickBooks customer for a CRM contact: the customer directory (link table), else an e-mail
query and a create in one batch request, with a DisplayName fallback.

Matching is by e-mail, case-insensitively (HighLevel's rule). DisplayName must be unique across customers,
vendors and employees, so a taken name becomes "Name (email)", then "Name (email) 2", … — deterministic and
readable. A taken name whose holder has the same e-mail is that customer (a race, or a query that missed).
That suffix is QuickBooks' business only: a customer becomes a contact under its name without it.
"""

from __future__ import annotations

import re

from ledgerbridge import AccountContext, Address, Contact

from . import echoes, errors, wire
from .batcher import batch_request_id
from .client import QuickBooksClient, quote_value, request_id
from .service import Service

LINK = "customer"
MAX_DISPLAY_NAME = 500
MAX_CANDIDATES = 20


def link_key(contact: Contact) -> str:
    email = contact.normalized_email
    return email if email else "name:" + " ".join(contact.name.split()).casefold()


def display_names(contact: Contact) -> list[str]:
    name = " ".join(contact.name.replace(":", "-").split()) or (contact.email or "Customer")
    email = contact.normalized_email
    first = name[:MAX_DISPLAY_NAME]
    if not email:
        return [first] + [f"{name} {n}"[:MAX_DISPLAY_NAME] for n in range(2, MAX_CANDIDATES + 1)]
    labelled = f"{name} ({email})"
    return [first, labelled[:MAX_DISPLAY_NAME]] + [
        f"{labelled} {n}"[:MAX_DISPLAY_NAME] for n in range(2, MAX_CANDIDATES)
    ]


def same_email(customer: wire.Customer, email: str | None) -> bool:
    return bool(email) and (customer.email or "").strip().lower() == email


def to_customer(contact: Contact, display_name: str) -> wire.Customer:
    address = contact.address
    return wire.Customer(
        DisplayName=display_name,
        GivenName=contact.given_name[:100] if contact.given_name else None,
        FamilyName=contact.family_name[:100] if contact.family_name else None,
        CompanyName=contact.company_name[:100] if contact.company_name else None,
        PrimaryEmailAddr=wire.EmailAddress(Address=contact.email.strip()) if contact.email else None,
        PrimaryPhone=wire.TelephoneNumber(FreeFormNumber=contact.phone) if contact.phone else None,
        BillAddr=wire.PhysicalAddress(
            Line1=address.line1, Line2=address.line2, City=address.city, CountrySubDivisionCode=address.region,
            PostalCode=address.postal_code, Country=address.country,
        ) if address else None,
    )  # fmt: skip


_LABELLED = re.compile(r"(.*?)\s*\(([^()]*)\)(?:\s+\d+)?", re.DOTALL)


def plain_name(display_name: str, email: str | None) -> str:
    """The name without the " (e-mail)" or " (e-mail) N" that made it unique in QuickBooks (see display_names)."""
    if email:
        labelled = _LABELLED.fullmatch(display_name.rstrip())
        if labelled and labelled[1].strip() and labelled[2].strip().lower() == email.strip().lower():
            return labelled[1].strip()
    return display_name


def to_contact(customer: wire.Customer) -> Contact:
    address = customer.BillAddr
    display = plain_name(customer.DisplayName, customer.email) if customer.DisplayName else None
    return Contact(
        name=display or customer.CompanyName or customer.email or f"Customer {customer.Id}",
        email=customer.email,
        given_name=customer.GivenName,
        family_name=customer.FamilyName,
        company_name=customer.CompanyName,
        phone=customer.PrimaryPhone.FreeFormNumber if customer.PrimaryPhone else None,
        address=Address(
            line1=address.Line1, line2=address.Line2, city=address.City, region=address.CountrySubDivisionCode,
            postal_code=address.PostalCode, country=address.Country,
        ) if address else None,
        accounting_id=customer.Id,
    )  # fmt: skip


def email_query(email: str) -> str:
    return f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {quote_value(email)}"


def first_by_email(rows: list[wire.Customer], email: str, *, besides: str | None = None) -> wire.Customer | None:
    """The lowest-id customer with this e-mail (other than `besides`)."""
    matches = [row for row in rows if same_email(row, email) and row.Id and row.Id != besides]
    return min(matches, key=lambda c: int(c.Id or 0)) if matches else None


async def find_by_email(service: Service, client: QuickBooksClient, email: str) -> wire.Customer | None:
    """The lowest-id active customer with this e-mail; None when none, or when the query is refused."""
    if client.realm_id in service.email_query_refused:
        return None
    try:
        rows = await client.query(wire.Customer, email_query(email))
    except errors.QueryRefusedError:
        service.email_query_refused.add(client.realm_id)
        return None
    return first_by_email(rows, email)


async def find_by_display_name(client: QuickBooksClient, name: str) -> wire.Customer | None:
    rows = await client.query(wire.Customer, f"SELECT * FROM Customer WHERE DisplayName = {quote_value(name)}")
    return rows[0] if rows else None


async def resolve(ctx: AccountContext, service: Service, client: QuickBooksClient, contact: Contact, key: str) -> str:
    """The customer id for `contact`, creating the customer when none has its e-mail.

    The link table is the company's customer directory (e-mail → customer id): the contacts import fills it
    with every customer, Customer webhooks and CDC keep it fresh, so a known customer costs no call. An e-mail
    the directory does not know is still asked of QuickBooks (Intuit delivers webhooks minutes late and CDC
    is polled, so a customer the user just made would otherwise be made twice): once the import has listed
    every customer, in the request that creates the customer (see `_ask_and_create`), else before it. One
    resolution per (company, e-mail) at a time across every replica sharing the store.
    """
    local = link_key(contact)
    link = await ctx.get_link(LINK, local)
    if link is not None:
        return str(link.remote_id)
    async with ctx.exclusive(f"{LINK}:{local}", hold_seconds=120.0, wait_seconds=120.0):
        link = await ctx.get_link(LINK, local)
        if link is not None:
            return str(link.remote_id)
        customer_id = await _find_or_create(ctx, service, client, contact, key)
        await ctx.put_link(LINK, local, customer_id)
        return customer_id


async def forget(ctx: AccountContext, contact: Contact) -> None:
    await ctx.delete_link(LINK, link_key(contact))


async def _find_or_create(
    ctx: AccountContext, service: Service, client: QuickBooksClient, contact: Contact, key: str
) -> str:
    email = contact.normalized_email
    names = display_names(contact)
    if email and client.realm_id not in service.email_query_refused:
        if await _directory_is_complete(ctx):
            answer = await _ask_and_create(ctx, service, client, contact, email, names[0], key)
            if answer is not None:
                return answer
            # the first name is someone else's (or, when the query was refused, maybe this e-mail's: ask again)
            first = 0 if client.realm_id in service.email_query_refused else 1
            return await _create(ctx, client, contact, key, names, first=first)
        found = await find_by_email(service, client, email)
        if found is not None and found.Id:
            return found.Id
    return await _create(ctx, client, contact, key, names)


async def _directory_is_complete(ctx: AccountContext) -> bool:
    """The contacts import has listed every customer: an e-mail the directory does not know is most likely new."""
    from . import contacts_import  # it imports this module

    state = await contacts_import.import_state(ctx)
    return state is not None and state.done


async def _ask_and_create(
    ctx: AccountContext,
    service: Service,
    client: QuickBooksClient,
    contact: Contact,
    email: str,
    name: str,
    key: str,
) -> str | None:
    """One batch request asks for the e-mail's customers and creates the customer under `name`: a new
    customer costs this one call instead of a query and a create. Returns the customer's id, or None when
    `name` is taken by someone without this e-mail (the other names are tried one create at a time).

    A customer with this e-mail that the directory did not know yet (made in QuickBooks since the import,
    its webhook still on the way) is the customer: when the batch's create made a second one beside it,
    that one is made inactive at once (QuickBooks' way of deleting a customer; it has no transactions) and
    the activity says so. A taken `name` whose holder has this e-mail creates nothing.
    """
    reply = await service.batchers.batch_client(client).batch(
        queries={"email": email_query(email)},
        creates={"create": to_customer(contact, name)},
        request_id=batch_request_id([request_id(key, "cust0")]),
    )
    created = reply.created("create", wire.Customer)
    made = created if isinstance(created, wire.Customer) and created.Id else None
    try:
        existing = first_by_email(reply.rows("email", wire.Customer), email, besides=made.Id if made else None)
    except errors.QueryRefusedError:
        service.email_query_refused.add(client.realm_id)
        existing = None
    if existing is not None and existing.Id:
        if made is not None:
            await _withdraw(ctx, client, made, existing, key)
        return existing.Id  # whatever the create said
    if isinstance(created, errors.DuplicateNameError):
        return None
    if isinstance(created, Exception):
        raise created
    return await _created(ctx, created)


async def _withdraw(
    ctx: AccountContext, client: QuickBooksClient, made: wire.Customer, existing: wire.Customer, key: str
) -> None:
    """Make inactive the customer `_ask_and_create` made beside the e-mail's existing one."""
    assert made.Id is not None
    await echoes.remember(ctx, "Customer", made.Id, echoes.stamp_of(made))
    inactive = await client.update(
        wire.Customer(Id=made.Id, SyncToken=made.SyncToken, Active=False), request_id(key, "cust0-off")
    )
    await echoes.remember(ctx, "Customer", made.Id, echoes.stamp_of(inactive))
    await ctx.log(
        f"QuickBooks already had customer {existing.DisplayName!r} (Id {existing.Id}) with e-mail "
        f"{existing.email}, made since the last look: the payment goes to it, and the customer "
        f"{made.DisplayName!r} (Id {made.Id}) created beside it was made inactive"
    )


async def _create(
    ctx: AccountContext, client: QuickBooksClient, contact: Contact, key: str, names: list[str], *, first: int = 0
) -> str:
    email = contact.normalized_email
    for index, candidate in enumerate(names[first:], start=first):
        try:
            created = await client.create(to_customer(contact, candidate), request_id(key, f"cust{index}"))
        except errors.DuplicateNameError:
            holder = await find_by_display_name(client, candidate)
            if holder is not None and holder.Id and (same_email(holder, email) or (not email and not holder.email)):
                return holder.Id
            continue
        return await _created(ctx, created)
    raise errors.FaultError(f"no free DisplayName for {contact.name!r} after {MAX_CANDIDATES} tries", code="6240")


async def _created(ctx: AccountContext, created: wire.Customer) -> str:
    if created.Id is None:
        raise errors.QuickBooksError("QuickBooks created a customer without an Id")
    await echoes.remember(ctx, "Customer", created.Id, echoes.stamp_of(created))
    from . import contacts_import  # it imports this module

    # the contact follows to the CRM as from the webhook, but from the reply: the echo is not read back
    await contacts_import.publish_customer(ctx, created)
    return created.Id
