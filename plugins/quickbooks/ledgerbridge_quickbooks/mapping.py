"""Where the money lands in the books: the accounts and items an account's settings choose.

Account names are checked against the company's chart of accounts when first used (an account that is
missing, inactive or of the wrong type stops the delivery with a message that names it, so the admin can fix
the setting and replay); the answer is remembered in the link table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ledgerbridge import DeliveryContext, LineItem, PermanentFailure

from . import names, pricing, wire
from .client import QuickBooksClient, quote_value
from .company import CompanySetup
from .service import Service
from .settings import QuickBooksSettings

ACCOUNT_LINK = "account"  # "<role>:<setting value>" → account id
DEPOSIT_TYPES = ("Bank", "Other Current Asset")
INCOME_TYPES = ("Income",)


class MappingError(PermanentFailure):
    """A setting names an account or item QuickBooks does not have: fix the setting, then replay."""


async def settings(ctx: DeliveryContext) -> QuickBooksSettings:
    value = await ctx.settings()
    return value if isinstance(value, QuickBooksSettings) else QuickBooksSettings()


async def account_ref(
    ctx: DeliveryContext, client: QuickBooksClient, wanted: str, types: Sequence[str], role: str
) -> wire.Ref | None:
    """The active account named (or numbered) `wanted` of one of `types`; None when `wanted` is empty."""
    wanted = wanted.strip()
    if not wanted:
        return None
    key = f"{role}:{wanted.casefold()}"
    link = await ctx.get_link(ACCOUNT_LINK, key)
    if link is not None:
        return wire.Ref(value=link.remote_id, name=str(link.data.get("name") or wanted))
    rows = await client.query(wire.Account, f"SELECT * FROM Account WHERE Name = {quote_value(wanted)}")
    if not rows and wanted.isdigit():
        rows = await client.query(wire.Account, f"SELECT * FROM Account WHERE Id = {quote_value(wanted)}")
    fits = [r for r in rows if r.AccountType in types and r.Active is not False and r.Id]
    if not fits:
        kinds = " or ".join(types)
        raise MappingError(f"the {role} account {wanted!r} in the QuickBooks settings is not an active {kinds} "
                           "account in the company's chart of accounts")  # fmt: skip
    account = fits[0]
    await ctx.put_link(ACCOUNT_LINK, key, account.Id or "", name=account.Name)
    return wire.Ref(value=account.Id or "", name=account.Name)


async def deposit_ref(ctx: DeliveryContext, client: QuickBooksClient) -> wire.Ref | None:
    return await account_ref(ctx, client, (await settings(ctx)).deposit_account, DEPOSIT_TYPES, "deposit")


async def item_refs(
    ctx: DeliveryContext,
    service: Service,
    client: QuickBooksClient,
    setup: CompanySetup,
    lines: Sequence[LineItem],
    key: str,
    extra: Sequence[str] = (),
) -> dict[str, wire.Ref]:
    """Item name (as pricing names lines) → item, for `lines` and the `extra` names, as the settings map them."""
    chosen = await settings(ctx)
    wanted = list(dict.fromkeys([*pricing.item_names(lines), *extra]))
    income = await account_ref(ctx, client, chosen.income_account, INCOME_TYPES, "income")
    if income is not None:
        setup = replace(setup, income_account=income)
    if chosen.item_mapping == "default":
        default = pricing.item_name(chosen.default_item)
        ref = (await names.item_refs(ctx, service, client, setup, [default], key))[default]
        return dict.fromkeys(wanted, ref)
    refs: dict[str, wire.Ref] = {}
    if chosen.item_mapping == "sku":
        refs = await _by_sku(client, lines)
    rest = [name for name in wanted if name not in refs]
    if rest:
        refs.update(await names.item_refs(ctx, service, client, setup, rest, key))
    return refs


async def _by_sku(client: QuickBooksClient, lines: Sequence[LineItem]) -> dict[str, wire.Ref]:
    skus = {pricing.item_name(line.name): line.sku for line in lines if line.sku}
    if not skus:
        return {}
    listed = ", ".join(quote_value(sku) for sku in dict.fromkeys(skus.values()))
    found = {row.Sku: row for row in await client.query(wire.Item, f"SELECT * FROM Item WHERE Sku IN ({listed})")
             if row.Sku and row.Id and row.Active is not False}  # fmt: skip
    return {name: wire.Ref(value=found[sku].Id or "", name=found[sku].Name)
            for name, sku in skus.items() if sku in found}  # fmt: skip
