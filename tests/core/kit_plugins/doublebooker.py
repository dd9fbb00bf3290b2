"""A deliberately non-idempotent accounting plugin: it books every delivery it is handed into an in-memory
ledger without looking at `ctx.idempotency_key`, so a repeated delivery books twice."""

from __future__ import annotations

from ledgerbridge import AccountContext, DeliveryContext, InvoiceChange, Payment, hookimpl

role = "accounting"
LEDGER: list[tuple[str, str]] = []


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    LEDGER.append((ctx.account_id, f"receipt {payment.payment_id} {payment.total.amount}"))


@hookimpl
async def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    LEDGER.append((ctx.account_id, f"invoice {change.invoice.number} {change.kind}"))


async def ledger(ctx: AccountContext) -> list[str]:
    return [entry for account, entry in LEDGER if account == ctx.account_id]


async def nothing(ctx: AccountContext) -> None:
    """An observe that sees nothing: with it every repeat would look harmless."""
