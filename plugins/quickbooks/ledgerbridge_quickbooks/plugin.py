"""The quickbooks plugin: a class the core builds once per server, registered through the `ledgerbridge`
entry-point group. It keeps the books (`role = "accounting"`); its state (HTTP client, tokens, limiters)
lives on the instance's `Service`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

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
    hookimpl,
)
from starlette.routing import BaseRoute, Route

from . import card, contacts_import, first_invoice, invoices, oauth, receipts, webhooks
from .service import CALLBACK_PATH, WEBHOOK_PATH, Service
from .settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_VERIFIER_TOKEN,
    QuickBooksSettings,
    has_intuit_credentials,
)

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


class QuickBooksPlugin:
    """QuickBooks Online as the account's books."""

    role = "accounting"
    connects = True

    def __init__(self, plugin: PluginContext) -> None:
        self.plugin = plugin
        self.service = Service(plugin)

    def use_service(self, service: Service) -> None:
        """Run on a service built with explicit credentials or limits (benchmarks, tests)."""
        self.service = service

    @staticmethod
    @hookimpl
    def register_sandboxes() -> list[SandboxSpec]:
        return [
            SandboxSpec(
                name="quickbooks",
                description="a local emulator of QuickBooks Online",
                add_arguments=_add_sandbox_arguments,
                create_app=_create_sandbox,
                mount_in_serve=not has_intuit_credentials(),
                title="QuickBooks sandbox",
                state_option="--state-dir",
                home_path="/companies",
                acts_as="act as the QuickBooks user: companies and their books",
            )
        ]

    @hookimpl
    def settings_schema(self) -> type[QuickBooksSettings]:
        return QuickBooksSettings

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> Sequence[BaseRoute]:
        return [
            Route("/connect", oauth.connect_route(plugin, self.service), methods=["GET"]),
            Route("/" + CALLBACK_PATH, oauth.callback_route(plugin, self.service), methods=["GET"]),
            Route("/disconnect", oauth.disconnect_route(plugin, self.service), methods=["POST"]),
            Route("/" + WEBHOOK_PATH, webhooks.receiver(plugin, self.service), methods=["POST"]),
        ]

    @hookimpl
    async def integration_card(self, ctx: AccountContext) -> IntegrationCard:
        return await card.integration_card(ctx, self.service)

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> Sequence[BackgroundTask]:
        async def contacts(ctx: AccountContext) -> None:
            await contacts_import.run(ctx, self.service)

        return [BackgroundTask(name="quickbooks-contacts", every_seconds=CONTACTS_EVERY_SECONDS, run=contacts)]

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        await receipts.on_payment(ctx, self.service, payment)

    @hookimpl
    async def on_invoice_change(self, ctx: DeliveryContext, change: InvoiceChange) -> None:
        await invoices.on_invoice_change(ctx, self.service, change)

    @hookimpl
    async def on_notification(self, ctx: DeliveryContext, notification: Notification) -> None:
        await webhooks.handle(ctx, self.service, notification)

    @hookimpl
    async def is_first_invoice(self, ctx: AccountContext, customer_id: str, invoice_id: str) -> bool:
        return await first_invoice.is_first_invoice(await self.service.client(ctx), customer_id, invoice_id)

    @hookimpl
    async def shutdown(self, plugin: PluginContext) -> None:
        await self.service.close()
