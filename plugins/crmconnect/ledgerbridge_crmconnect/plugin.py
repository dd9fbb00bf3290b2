"""The crmconnect plugin's hook implementations, registered through the `ledgerbridge` entry-point group."""

from __future__ import annotations

import argparse
import os
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ledgerbridge import (
    AccountContext,
    BackgroundTask,
    CardAction,
    CardField,
    CardToggle,
    ContactSync,
    DeliveryContext,
    FirstInvoicePaid,
    IntegrationCard,
    Notification,
    PluginContext,
    SandboxSpec,
)
from ledgerbridge import hookimpl as _hookimpl
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
from ledgerbridge_crmconnect.settings import CrmConnectSettings
from ledgerbridge_crmconnect.webhooks import LAST_WEBHOOK_CURSOR, WebhookReceiver

F = TypeVar("F", bound=Callable[..., Any])


def hookimpl(function: F) -> F:
    """The core's marker, typed so the hooks keep their signatures."""
    marked: F = _hookimpl(function)
    return marked


SANDBOX_ENV = "LEDGERBRIDGE_CRM_SANDBOX"
AUTH_LABELS = {"token": "Private Integration Token", "oauth": "OAuth (marketplace app)", "sandbox": "Sandbox token"}


class _Plugin:
    """Per-server state: one shared connection pool and the webhook receiver."""

    def __init__(self, plugin: PluginContext) -> None:
        self.connections = Connections()
        self.receiver = WebhookReceiver(plugin, self.connections)


_servers: weakref.WeakKeyDictionary[PluginContext, _Plugin] = weakref.WeakKeyDictionary()


def _state(plugin: PluginContext) -> _Plugin:
    if plugin not in _servers:
        _servers[plugin] = _Plugin(plugin)
    return _servers[plugin]


@hookimpl
def settings_schema() -> type[CrmConnectSettings]:
    return CrmConnectSettings


@hookimpl
async def startup(plugin: PluginContext) -> None:
    for ctx in await plugin.accounts(enabled_only=True):
        await start_account(ctx)  # one account's problem is shown on its card, never stops the server


@hookimpl
async def shutdown(plugin: PluginContext) -> None:
    await _state(plugin).connections.aclose()


@hookimpl
def register_routes(plugin: PluginContext) -> Sequence[BaseRoute]:
    state = _state(plugin)

    async def connect(request: Request) -> Response:
        return await oauth.connect(plugin, request)

    async def connect_page(request: Request) -> Response:
        return await oauth.connect_page(plugin, request)

    async def disconnect(request: Request) -> Response:
        return await oauth.disconnect(plugin, request)

    async def oauth_start(request: Request) -> Response:
        return await oauth.start(plugin, request)

    async def oauth_callback(request: Request) -> Response:
        return await oauth.callback(plugin, state.connections, request)

    return [
        Route("/webhooks", state.receiver.receive, methods=["POST"]),
        Route("/accounts/{account_id}/connect", connect_page, methods=["GET"]),
        Route("/accounts/{account_id}/connect", connect, methods=["POST"]),
        Route("/accounts/{account_id}/disconnect", disconnect, methods=["POST"]),
        Route("/accounts/{account_id}/oauth/start", oauth_start, methods=["GET"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
    ]


@hookimpl
def background_tasks(plugin: PluginContext) -> Sequence[BackgroundTask]:
    connections = _state(plugin).connections

    async def reconcile(ctx: AccountContext) -> None:
        await poller.poll(ctx, connections)

    return [BackgroundTask(name="reconcile-payments", every_seconds=poller.tick_seconds(), run=reconcile)]


@hookimpl
async def on_notification(ctx: DeliveryContext, notification: Notification) -> None:
    await notifications.handle(ctx, _state(ctx.plugin_context).connections, notification)


@hookimpl
async def on_contact_sync(ctx: DeliveryContext, sync: ContactSync) -> None:
    client, resolved = await _state(ctx.plugin_context).connections.client(ctx)
    async with steering():
        await sync_contact(ctx, client, resolved.location_id, sync)


@hookimpl
async def on_first_invoice_paid(ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
    client, resolved = await _state(ctx.plugin_context).connections.client(ctx)
    await reviews.request_review(ctx, client, resolved.settings, resolved.location_id, event)


@hookimpl
async def integration_card(ctx: AccountContext) -> IntegrationCard:
    resolved = await resolve(ctx)
    state = await ctx.state()
    settings = resolved.settings
    plugin = ctx.plugin_context
    if state.paused_reason:
        status: Any = "reconnect_needed"
    else:
        status = "connected" if resolved.ready else "not_connected"
    review = "off"
    if settings.review_request_enabled:
        review = {
            "workflow": f"workflow {settings.review_workflow_id or '(not set)'}",
            "tag": f"tag {settings.review_tag or '(not set)'}",
            "message": f"{settings.review_message_type} with link {settings.review_link or '(not set)'}",
        }[settings.review_method]
    fields = (
        CardField(label="Location", value=resolved.location_id or "not set"),
        CardField(label="Authentication", value=AUTH_LABELS.get(resolved.auth or "", "none")),
        CardField(label="API", value=resolved.base_url),
        CardField(label="Webhook URL", value=plugin.url("webhooks")),
        CardField(label="Last webhook", value=await ctx.get_cursor(LAST_WEBHOOK_CURSOR) or "none yet"),
        CardField(label="Review request", value=review),
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
            CardAction(label="Disconnect", url=plugin.url(f"accounts/{ctx.account_id}/disconnect"), style="danger")
        )
    summary = state.paused_reason or (
        "Payments and invoices flow to accounting; customers flow back as contacts."
        if resolved.ready
        else "Connect a CRM Connect location to start syncing."
    )
    return IntegrationCard(
        title="CRM Connect",
        status=status,
        summary=summary,
        fields=fields,
        actions=tuple(actions),
        toggles=(
            CardToggle(
                label="Ask for a review when a customer's first invoice is paid",
                setting="review_request_enabled",
                value=settings.review_request_enabled,
                help="Sent once per contact, by the review-request method in the settings.",
            ),
        ),
    )


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


@hookimpl
def register_sandboxes() -> list[SandboxSpec]:
    mount = os.environ.get(SANDBOX_ENV, "").lower() not in ("0", "false", "no") and not os.environ.get(CLIENT_ID_ENV)
    return [
        SandboxSpec(
            name="crmconnect",
            description="a local emulator of CRM Connect (HighLevel API v2)",
            add_arguments=_add_sandbox_arguments,
            create_app=_create_sandbox,
            mount_in_serve=mount,
        )
    ]
