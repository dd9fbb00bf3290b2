"""The quickbooks plugin's hook implementations, registered through the `ledgerbridge` entry-point group."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ledgerbridge import (
    AccountContext,
    BackgroundTask,
    DeliveryContext,
    IntegrationCard,
    InvoiceChange,
    Notification,
    Payment,
    PluginContext,
    SandboxSpec,
)
from ledgerbridge import hookimpl as _hookimpl
from starlette.routing import BaseRoute, Route

from . import card, contacts_import, invoices, oauth, receipts, webhooks
from .service import CALLBACK_PATH, WEBHOOK_PATH, close_service, service_for
from .settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_VERIFIER_TOKEN,
    QuickBooksSettings,
    has_intuit_credentials,
)

F = TypeVar("F", bound=Callable[..., Any])


def hookimpl(function: F) -> F:
    """ledgerbridge.hookimpl with its type kept (pluggy's marker is untyped)."""
    return cast(F, _hookimpl(function))  # type: ignore[redundant-cast, unused-ignore]


CONTACTS_EVERY_SECONDS = float(os.environ.get("LEDGERBRIDGE_QBO_CONTACTS_EVERY", "60"))
SANDBOX_MOUNT = "/sandbox/quickbooks"


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ledgerbridge_quickbooks import sandbox

    sandbox.add_arguments(parser)


def _server_url(sandbox_base_url: str) -> str:
    """Mounted by `serve` at <server>/sandbox/quickbooks; standalone, the server is LEDGERBRIDGE_PUBLIC_URL."""
    if sandbox_base_url.rstrip("/").endswith(SANDBOX_MOUNT):
        return sandbox_base_url.rstrip("/")[: -len(SANDBOX_MOUNT)]
    return os.environ.get("LEDGERBRIDGE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")


def _create_sandbox(args: argparse.Namespace, base_url: str) -> Any:
    from ledgerbridge_quickbooks import sandbox

    config = sandbox.config_from_args(args, base_url)
    if not has_intuit_credentials() and not any(app.client_id == SANDBOX_CLIENT_ID for app in config.apps):
        # the default app this server uses when no Intuit credentials are configured
        server = _server_url(base_url)
        config.apps.append(sandbox.AppRegistration(
            client_id=SANDBOX_CLIENT_ID, client_secret=SANDBOX_CLIENT_SECRET,
            redirect_uris=[f"{server}/plugins/quickbooks/{CALLBACK_PATH}"], verifier_token=SANDBOX_VERIFIER_TOKEN,
            webhook_url=f"{server}/plugins/quickbooks/{WEBHOOK_PATH}",
        ))  # fmt: skip
    return sandbox.create_app(config)


@hookimpl
def register_sandboxes() -> list[SandboxSpec]:
    return [
        SandboxSpec(
            name="quickbooks",
            description="a local emulator of QuickBooks Online",
            add_arguments=_add_sandbox_arguments,
            create_app=_create_sandbox,
            mount_in_serve=not has_intuit_credentials(),
            state_option="--state-dir",
        )
    ]


@hookimpl
def settings_schema() -> type[QuickBooksSettings]:
    return QuickBooksSettings


@hookimpl
def register_routes(plugin: PluginContext) -> Sequence[BaseRoute]:
    return [
        Route("/connect", oauth.connect_route(plugin), methods=["GET"]),
        Route("/" + CALLBACK_PATH, oauth.callback_route(plugin), methods=["GET"]),
        Route("/disconnect", oauth.disconnect_route(plugin), methods=["POST"]),
        Route("/" + WEBHOOK_PATH, webhooks.receiver(plugin), methods=["POST"]),
    ]


@hookimpl
async def integration_card(ctx: AccountContext) -> IntegrationCard:
    return await card.integration_card(ctx)


@hookimpl
def background_tasks(plugin: PluginContext) -> Sequence[BackgroundTask]:
    async def contacts(ctx: AccountContext) -> None:
        await contacts_import.run(ctx, service_for(plugin))

    return [BackgroundTask(name="quickbooks-contacts", every_seconds=CONTACTS_EVERY_SECONDS, run=contacts)]


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    await receipts.on_payment(ctx, service_for(ctx.plugin_context), payment)


@hookimpl
async def on_invoice_change(ctx: DeliveryContext, change: InvoiceChange) -> None:
    await invoices.on_invoice_change(ctx, service_for(ctx.plugin_context), change)


@hookimpl
async def on_notification(ctx: DeliveryContext, notification: Notification) -> None:
    await webhooks.handle(ctx, notification)


@hookimpl
async def shutdown(plugin: PluginContext) -> None:
    await close_service(plugin)
