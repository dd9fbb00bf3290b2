"""plainledger: books every CRM payment and invoice change as a line in a JSON Lines journal."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from ledgerbridge import (
    AccountContext,
    CardField,
    CardToggle,
    DeliveryContext,
    IntegrationCard,
    InvoiceChange,
    Payment,
    Skip,
    hookimpl,
)


class Settings(msgspec.Struct, kw_only=True):
    """Per-account settings; every field has a default so a new account works at once."""

    record_invoices: bool = True
    currency_filter: str | None = None


def journal(ctx: AccountContext) -> Path:
    return ctx.plugin_context.data_dir / f"{ctx.account_id}.jsonl"


def append(ctx: AccountContext, entry: dict[str, object]) -> None:
    with journal(ctx).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


@hookimpl
def settings_schema() -> type[msgspec.Struct]:
    return Settings


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    settings: Settings = await ctx.settings()
    if settings.currency_filter and payment.total.currency != settings.currency_filter:
        raise Skip(f"payment in {payment.total.currency}, this ledger books {settings.currency_filter}")
    if payment.invoice_id is not None:
        raise Skip("a refunded payment on a CRM invoice: its sale is the invoice, which this ledger does not keep")
    # the link makes a repeated delivery harmless: the entry is written once per payment
    if await ctx.get_link("payment", payment.payment_id) is not None:
        return
    append(
        ctx,
        {
            "kind": "receipt",
            "payment": payment.payment_id,
            "email": payment.payer.email,
            "total": str(payment.total.amount),
            "currency": payment.total.currency,
        },
    )
    await ctx.put_link("payment", payment.payment_id, ctx.idempotency_key)
    await ctx.log(f"booked receipt for {payment.payer.name}: {payment.total}")


@hookimpl
async def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    settings: Settings = await ctx.settings()
    if not settings.record_invoices:
        raise Skip("invoices are not recorded for this account")
    key = f"{change.invoice.invoice_id}:{ctx.event_external_id}"
    if not await ctx.claim_once("invoice-change", key):
        return
    append(
        ctx,
        {
            "kind": f"invoice_{change.kind}",
            "invoice": change.invoice.number,
            "total": str(change.invoice.total.amount),
            "paid": str(change.invoice.amount_paid.amount),
        },
    )


@hookimpl
async def integration_card(ctx: AccountContext) -> IntegrationCard:
    settings: Settings = await ctx.settings()
    entries = await ctx.count_links("payment")
    return IntegrationCard(
        title="Plain ledger",
        status="ready",
        summary="Books payments and invoices in a JSON Lines journal.",
        fields=(CardField(label="Journal", value=str(journal(ctx))), CardField(label="Receipts", value=str(entries))),
        toggles=(CardToggle(label="Record invoices", setting="record_invoices", value=settings.record_invoices),),
    )
