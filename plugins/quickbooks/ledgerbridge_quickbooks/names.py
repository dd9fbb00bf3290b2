"""Find-or-create for QuickBooks name lists (items, payment methods), remembered in the link table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from ledgerbridge import AccountContext

from . import errors, wire
from .client import QuickBooksClient, quote_value, request_id
from .company import CompanySetup
from .service import Service

ITEM_LINK = "item"
PAYMENT_METHOD_LINK = "payment_method"
IN_CHUNK = 50
CARD_WORDS = ("card", "visa", "mastercard", "amex", "american express", "discover", "stripe")


def _step(prefix: str, name: str) -> str:
    return f"{prefix}-{hashlib.sha256(name.casefold().encode()).hexdigest()[:10]}"


async def _resolve(
    ctx: AccountContext,
    service: Service,
    client: QuickBooksClient,
    kind: type[wire.Item] | type[wire.PaymentMethod],
    link_kind: str,
    names: Sequence[str],
    make: Callable[[str], wire.Item | wire.PaymentMethod],
    key: str,
) -> dict[str, wire.Ref]:
    """name → Ref for every name; one IN query for the unknown ones, then a create for each still missing."""
    refs: dict[str, wire.Ref] = {}
    missing: list[str] = []
    for name in dict.fromkeys(names):
        link = await ctx.get_link(link_kind, name.casefold())
        if link is not None:
            refs[name] = wire.Ref(value=link.remote_id, name=name)
        else:
            missing.append(name)
    if not missing:
        return refs
    entity = wire.entity_name(kind)
    for start in range(0, len(missing), IN_CHUNK):
        chunk = missing[start : start + IN_CHUNK]
        listed = ", ".join(quote_value(name) for name in chunk)
        for row in await client.query(kind, f"SELECT * FROM {entity} WHERE Name IN ({listed})"):
            for name in chunk:
                if row.Name and row.Id and row.Name.casefold() == name.casefold() and name not in refs:
                    refs[name] = wire.Ref(value=row.Id, name=row.Name)
    for name in missing:
        if name not in refs:
            async with service.lock(client.realm_id, link_kind, name.casefold()):
                link = await ctx.get_link(link_kind, name.casefold())
                refs[name] = (
                    wire.Ref(value=link.remote_id, name=name)
                    if link is not None
                    else await _create(client, kind, make(name), name, request_id(key, _step(link_kind[:4], name)))
                )
        await ctx.put_link(link_kind, name.casefold(), refs[name].value)
    return refs


async def _create(
    client: QuickBooksClient,
    kind: type[wire.Item] | type[wire.PaymentMethod],
    entity: wire.Item | wire.PaymentMethod,
    name: str,
    rid: str,
) -> wire.Ref:
    try:
        created = await client.create(entity, rid)
    except errors.DuplicateNameError:
        # created meanwhile by someone else (or inactive): take the active one with that name
        rows = await client.query(kind, f"SELECT * FROM {wire.entity_name(kind)} WHERE Name = {quote_value(name)}")
        if not rows or not rows[0].Id:
            raise
        return wire.Ref(value=rows[0].Id, name=rows[0].Name)
    return wire.Ref(value=created.Id or "", name=created.Name)


async def item_refs(
    ctx: AccountContext,
    service: Service,
    client: QuickBooksClient,
    setup: CompanySetup,
    names: Sequence[str],
    key: str,
) -> dict[str, wire.Ref]:
    """A Service item per CRM line name (created under the company's service income account when missing)."""

    def make(name: str) -> wire.Item:
        return wire.Item(Name=name, Type="Service", IncomeAccountRef=setup.income_account)

    return await _resolve(ctx, service, client, wire.Item, ITEM_LINK, names, make, key)


async def payment_method_ref(
    ctx: AccountContext, service: Service, client: QuickBooksClient, method: str | None, key: str
) -> wire.Ref | None:
    if not method or not method.strip():
        return None
    name = " ".join(method.replace(":", "-").split())[:31].title()

    def make(name: str) -> wire.PaymentMethod:
        card = any(word in name.casefold() for word in CARD_WORDS)
        return wire.PaymentMethod(Name=name, Type="CREDIT_CARD" if card else "NON_CREDIT_CARD")

    refs = await _resolve(ctx, service, client, wire.PaymentMethod, PAYMENT_METHOD_LINK, [name], make, key)
    return refs[name]
