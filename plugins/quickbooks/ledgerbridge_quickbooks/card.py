"""The integration card: connection, counts, import progress and actions."""

from __future__ import annotations

from datetime import UTC, datetime

from ledgerbridge import AccountContext, CardAction, CardField, CardProgress, IntegrationCard

from . import contacts_import, invoices, receipts
from .service import Service
from .tokens import load_connection

TITLE = "QuickBooks Online"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _epoch(iso: str | None) -> float | None:
    """An ISO 8601 time (QuickBooks' LastUpdatedTime) as epoch seconds, or None."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def integration_card(ctx: AccountContext, service: Service) -> IntegrationCard:
    plugin = ctx.plugin_context
    connect = CardAction(label="QB Connect", url=plugin.url(f"connect?account={ctx.account_id}"), method="GET",
                         style="primary")  # fmt: skip
    connection = await load_connection(ctx)
    if connection is None:
        configured = service.credentials is not None
        return IntegrationCard(
            title=TITLE,
            status="not_connected",
            summary="Connect a QuickBooks Online company." if configured else "QuickBooks credentials are not set.",
            actions=(connect,) if configured else (),
        )
    state = await ctx.state()
    counts = [
        ("Contacts imported", await ctx.count_links(contacts_import.CONTACT_LINK)),
        ("Sales receipts", await ctx.count_links(receipts.RECEIPT_LINK)),
        ("Refund receipts", await ctx.count_links(receipts.REFUND_LINK)),
        ("Invoices", await ctx.count_links(invoices.LINK)),
    ]
    watermark = await ctx.get_cursor(contacts_import.WATERMARK_CURSOR)
    fields = [
        CardField(label="Company", value=connection.company_name or "—"),
        CardField(label="Realm", value=connection.realm_id),
        CardField(label="Connected since", value=_when(connection.connected_at), at=connection.connected_at),
        CardField(label="Customer changes read up to", value=watermark or "—", at=_epoch(watermark)),
        *(CardField(label=label, value=str(count)) for label, count in counts),
    ]
    disconnect = CardAction(label="Disconnect", url=plugin.url(f"disconnect?account={ctx.account_id}"),
                           confirm="Disconnect QuickBooks? Payments stop reaching the books until you connect again; "
                                    "nothing already booked changes.",
                            method="POST", style="danger")  # fmt: skip
    imported = await contacts_import.import_state(ctx)
    progress = None
    if imported is not None and not imported.done:
        progress = CardProgress(label="Importing customers", done=imported.imported, total=imported.total)
    if state.paused_reason:
        reconnect = CardAction(label="Reconnect", url=connect.url, method="GET", style="primary")
        return IntegrationCard(title=TITLE, status="reconnect_needed", summary=state.paused_reason,
                               fields=tuple(fields), actions=(reconnect, disconnect),
                               progress=progress)  # fmt: skip
    return IntegrationCard(
        title=TITLE,
        status="connected",
        summary=f"Connected to {connection.company_name or connection.realm_id}",
        fields=tuple(fields),
        actions=(connect, disconnect),
        progress=progress,
    )
