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

#: these are the account's books: the core routes CRM payments and invoice changes here
role = "accounting"


class Settings(msgspec.Struct, kw_only=True):
    """Per-account settings; every field has a default so a new account works at once."""

    record_invoices: bool = True
    currency_filter: str | None = None


def journal(ctx: AccountContext) -> Path:
    return ctx.plugin_context.data_dir / f"{ctx.account_id}.jsonl"


def entries(ctx: AccountContext) -> list[dict[str, object]]:
    path = journal(ctx)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def book(ctx: DeliveryContext, entry: dict[str, object]) -> bool:
    """Append `entry` once per delivery. The line carries the delivery's idempotency key, so a repeated
    delivery (a worker that died after writing, before the core recorded it) finds its line and writes
    nothing: the journal is the ledger's own request-id check, as QuickBooks' `requestid` is."""
    if any(line.get("key") == ctx.idempotency_key for line in entries(ctx)):
        return False
    with journal(ctx).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({**entry, "key": ctx.idempotency_key}, sort_keys=True) + "\n")
    return True


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
    booked = await ctx.get_link("payment", payment.payment_id)
    if booked is not None and booked.remote_id != ctx.idempotency_key:
        raise Skip("the payment's receipt is booked already; this ledger books no refunds")
    receipt = {
        "kind": "receipt",
        "payment": payment.payment_id,
        "email": payment.payer.email,
        "total": str(payment.total.amount),
        "currency": payment.total.currency,
    }
    if book(ctx, receipt):
        await ctx.log(f"booked receipt for {payment.payer.name}: {payment.total}")
    await ctx.put_link("payment", payment.payment_id, ctx.idempotency_key)


@hookimpl
async def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    settings: Settings = await ctx.settings()
    if not settings.record_invoices:
        raise Skip("invoices are not recorded for this account")
    book(
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
