"""The Xero card: connection, settings in use, counts, import progress and actions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ledgerbridge import AccountContext, CardAction, CardField, CardProgress, IntegrationCard

from . import contacts, contacts_import, invoices, receipts
from .tokens import load_connection

if TYPE_CHECKING:
    from .plugin import XeroPlugin

TITLE = "Xero"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


async def integration_card(ctx: AccountContext, plugin: XeroPlugin) -> IntegrationCard:
    context = ctx.plugin_context
    connect = CardAction(
        label="Connect to Xero", url=context.url(f"connect?account={ctx.account_id}"), method="GET", style="primary"
    )
    settings = await ctx.settings()
    connection = await load_connection(ctx)
    if connection is None:
        configured = plugin.credentials is not None
        return IntegrationCard(
            title=TITLE,
            status="not_connected",
            summary="Connect a Xero organisation." if configured else "Xero credentials are not set.",
            actions=(connect,) if configured else (),
        )
    counts = [
        ("Contacts matched or created", await ctx.count_links(contacts.LINK)),
        ("Payments booked", await ctx.count_links(receipts.LINK)),
        ("Invoices", await ctx.count_links(invoices.LINK)),
    ]
    payments_as = "Receive money" if settings.payments_as == "bank_transaction" else "Invoice + payment"
    fields = (
        CardField(label="Organisation", value=connection.tenant_name or connection.tenant_id),
        CardField(label="Connected since", value=_when(connection.connected_at)),
        CardField(label="Payments booked as", value=payments_as),
        CardField(label="Bank account", value=settings.bank_account_code or "first bank account"),
        *(CardField(label=label, value=str(count)) for label, count in counts),
    )
    disconnect = CardAction(
        label="Disconnect", url=context.url(f"disconnect?account={ctx.account_id}"), method="POST", style="danger"
    )
    imported = await contacts_import.import_state(ctx)
    progress = None
    if imported is not None and not imported.done:
        progress = CardProgress(label="Importing contacts", done=imported.imported, total=None)
    state = await ctx.state()
    if state.paused_reason:
        reconnect = CardAction(label="Reconnect", url=connect.url, method="GET", style="primary")
        return IntegrationCard(
            title=TITLE,
            status="reconnect_needed",
            summary=state.paused_reason,
            fields=fields,
            actions=(reconnect, disconnect),
            progress=progress,
        )
    return IntegrationCard(
        title=TITLE,
        status="connected",
        summary=f"Connected to {connection.tenant_name}",
        fields=fields,
        actions=(disconnect,),
        progress=progress,
    )
