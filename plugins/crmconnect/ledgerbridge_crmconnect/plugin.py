"""The crmconnect plugin: a class the core builds once per server, registered through the `ledgerbridge`
entry-point group. It is the account's CRM (`role = "crm"`): it turns CRM webhooks and its poller into
payments and invoice changes, upserts contacts, and sends the review requests the core asks for."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ledgerbridge import (
    AccountContext,
    BackgroundTask,
    CardAction,
    CardField,
    ContactSync,
    DeliveryContext,
    FirstInvoicePaid,
    IntegrationCard,
    Notification,
    PluginContext,
    SandboxSpec,
    hookimpl,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerbridge_crmconnect import notifications, oauth, poller, reviews
from ledgerbridge_crmconnect.connection import (
    CLIENT_ID_ENV,
    SANDBOX_LOCATION_ID,
    SANDBOX_TOKEN,
    Connections,
    resolve,
    start_account,
    steering,
)
from ledgerbridge_crmconnect.contacts import sync_contact
from ledgerbridge_crmconnect.directory import Readiness
from ledgerbridge_crmconnect.settings import CrmConnectSettings
from ledgerbridge_crmconnect.webhooks import LAST_WEBHOOK_CURSOR, WebhookReceiver

SANDBOX_ENV = "LEDGERBRIDGE_CRM_SANDBOX"
AUTH_LABELS = {"token": "Private Integration Token", "oauth": "OAuth (marketplace app)", "sandbox": "Sandbox token"}


class CrmConnectPlugin:
    """CRM Connect (HighLevel) as the account's CRM; one connection pool and webhook receiver per server."""

    role = "crm"

    def __init__(self, plugin: PluginContext) -> None:
        self.plugin = plugin
        self.connections = Connections(plugin)
        self.receiver = WebhookReceiver(plugin, self.connections)
        self.directories = Readiness()  # contact directories seen complete (contacts.py)

    @staticmethod
    @hookimpl
    def register_sandboxes() -> list[SandboxSpec]:
        mount = os.environ.get(SANDBOX_ENV, "").lower() not in ("0", "false", "no") and not os.environ.get(
            CLIENT_ID_ENV
        )
        return [
            SandboxSpec(
                name="crmconnect",
                description="a local emulator of CRM Connect (HighLevel API v2)",
                add_arguments=_add_sandbox_arguments,
                create_app=_create_sandbox,
                mount_in_serve=mount,
                title="CRM Connect sandbox",
                state_option="--state-dir",
                acts_as="act as the CRM user: contacts, invoices and payments",
            )
        ]

    @hookimpl
    def settings_schema(self) -> type[CrmConnectSettings]:
        return CrmConnectSettings

    @hookimpl
    async def startup(self, plugin: PluginContext) -> None:
        for ctx in await plugin.accounts(enabled_only=True):
            await start_account(ctx)  # one account's problem is shown on its card, never stops the server

    @hookimpl
    async def shutdown(self, plugin: PluginContext) -> None:
        await self.connections.aclose()

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> Sequence[BaseRoute]:
        connections = self.connections

        async def connect(request: Request) -> Response:
            return await oauth.connect(plugin, request)

        async def connect_page(request: Request) -> Response:
            return await oauth.connect_page(plugin, request)

        async def disconnect(request: Request) -> Response:
            return await oauth.disconnect(plugin, request)

        async def oauth_start(request: Request) -> Response:
            return await oauth.start(plugin, request)

        async def oauth_callback(request: Request) -> Response:
            return await oauth.callback_page(plugin, connections, request)

        return [
            Route("/webhooks", self.receiver.receive, methods=["POST"]),
            Route("/accounts/{account_id}/connect", connect_page, methods=["GET"]),
            Route("/accounts/{account_id}/connect", connect, methods=["POST"]),
            Route("/accounts/{account_id}/disconnect", disconnect, methods=["POST"]),
            Route("/accounts/{account_id}/oauth/start", oauth_start, methods=["GET"]),
            Route("/oauth/callback", oauth_callback, methods=["GET"]),
        ]

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> Sequence[BackgroundTask]:
        async def reconcile(ctx: AccountContext) -> None:
            await poller.poll(ctx, self.connections)

        return [BackgroundTask(name="reconcile-payments", every_seconds=poller.tick_seconds(), run=reconcile)]

    @hookimpl
    async def on_notification(self, ctx: DeliveryContext, notification: Notification) -> None:
        await notifications.handle(ctx, self.connections, notification)

    @hookimpl
    async def on_contact_sync(self, ctx: DeliveryContext, sync: ContactSync) -> None:
        client, resolved = await self.connections.client(ctx)
        async with steering():
            await sync_contact(ctx, client, resolved.location_id, sync, self.directories)

    @hookimpl
    async def on_first_invoice_paid(self, ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
        client, resolved = await self.connections.client(ctx)
        await reviews.request_review(ctx, client, resolved, event)

    @hookimpl
    async def default_review_link(self, ctx: AccountContext) -> str | None:
        """HighLevel's API does not publish a location's review link; the sandbox has a review page."""
        resolved = await resolve(ctx)
        if not (resolved.sandbox and resolved.ready):
            return None
        return f"{resolved.base_url}/locations/{resolved.location_id}/review"

    @hookimpl
    async def integration_card(self, ctx: AccountContext) -> IntegrationCard:
        return await _card(ctx)


def _epoch(iso: str | None) -> float | None:
    """The last webhook's time (ISO 8601) as epoch seconds, or None."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _card(ctx: AccountContext) -> IntegrationCard:
    resolved = await resolve(ctx)
    state = await ctx.state()
    plugin = ctx.plugin_context
    if state.paused_reason:
        status: Any = "reconnect_needed"
    else:
        status = "connected" if resolved.ready else "not_connected"
    last_webhook = await ctx.get_cursor(LAST_WEBHOOK_CURSOR)
    fields = (
        CardField(label="Location", value=resolved.location_id or "not set"),
        CardField(label="Authentication", value=AUTH_LABELS.get(resolved.auth or "", "none")),
        CardField(label="API", value=resolved.base_url),
        CardField(label="Webhook URL", value=plugin.url("webhooks")),
        CardField(label="Last webhook", value=last_webhook or "none yet", at=_epoch(last_webhook)),
    )
    actions = [
        CardAction(label="Connect with a token", url=plugin.url(f"accounts/{ctx.account_id}/connect"), method="GET")
    ]
    if os.environ.get(CLIENT_ID_ENV):
        actions.append(
            CardAction(
                label="Connect with OAuth",
                url=plugin.url(f"accounts/{ctx.account_id}/oauth/start"),
                method="GET",
                style="primary",
            )
        )
    if resolved.auth in ("token", "oauth"):
        actions.append(
            CardAction(
                label="Disconnect",
                url=plugin.url(f"accounts/{ctx.account_id}/disconnect"),
                style="danger",
                confirm="Disconnect CRM Connect? Payments and invoices stop arriving until you connect again.",
            )
        )
    summary = state.paused_reason or (
        "Payments and invoices flow to the books; customers flow back as contacts."
        if resolved.ready
        else "Connect a CRM Connect location to start syncing."
    )
    return IntegrationCard(title="CRM Connect", status=status, summary=summary, fields=fields, actions=tuple(actions))


# -- the sandbox ---------------------------------------------------------------------------------------


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ledgerbridge_crmconnect import sandbox

    sandbox.add_arguments(parser)


def _create_sandbox(args: argparse.Namespace, base_url: str) -> Any:
    """Seed the location and token the plugin's sandbox defaults use; send webhooks to this server."""
    from ledgerbridge_crmconnect import sandbox

    if not args.location:
        args.location = [sandbox.LocationSeed(id=SANDBOX_LOCATION_ID, name="ledgerbridge sandbox", token=SANDBOX_TOKEN)]
    suffix = "/sandbox/crmconnect"
    if args.webhook_url is None and base_url.rstrip("/").endswith(suffix):
        server_url = base_url.rstrip("/")[: -len(suffix)]
        args.webhook_url = f"{server_url}/plugins/crmconnect/webhooks"
    return sandbox.create_app(sandbox.config_from_args(args, base_url))
