"""The Xero plugin (role `accounting`): a class the core builds once per server with its PluginContext,
registered through the `ledgerbridge` entry-point group; it holds that server's state (HTTP client,
limiters, tokens, organisation caches)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx
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
    Skip,
    hookimpl,
)
from starlette.routing import BaseRoute, Route

from . import card, contacts_import, facts, invoices, oauth, organisation, receipts, webhooks
from .client import XeroClient
from .identity import IdentityClient
from .limiter import tenant_limiters
from .settings import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_WEBHOOK_KEY,
    Credentials,
    Limits,
    XeroSettings,
    credentials_from_env,
    has_xero_credentials,
    limits_from_env,
)
from .tokens import AccountTokens, TokenManager, load_connection

WEBHOOK_PATH = "webhooks"
SANDBOX_MOUNT = "/sandbox/xero"
CONTACTS_EVERY_SECONDS = float(os.environ.get("LEDGERBRIDGE_XERO_CONTACTS_EVERY", "300"))


class XeroPlugin:
    role = "accounting"
    connects = True  # its sync start is the moment an organisation is first connected

    def __init__(
        self, plugin: PluginContext, *, credentials: Credentials | None = None, limits: Limits | None = None
    ) -> None:
        self.plugin = plugin
        self._credentials = credentials
        self.limits = limits or limits_from_env()
        self.http = httpx.AsyncClient(timeout=self.limits.timeout)
        self.limiters = tenant_limiters(plugin, self.limits)
        self._tokens: TokenManager | None = None
        self._setups: dict[str, organisation.OrganisationSetup] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self.background: set[asyncio.Task[None]] = set()

    # state

    @property
    def credentials(self) -> Credentials | None:
        if self._credentials is None:
            self._credentials = credentials_from_env(self.plugin.sandbox_url("xero"))
        return self._credentials

    @property
    def redirect_uri(self) -> str:
        return self.plugin.url(oauth.CALLBACK_PATH)

    @property
    def identity(self) -> IdentityClient:
        credentials = self.credentials
        if credentials is None:
            raise _not_configured()
        return IdentityClient(self.http, credentials)

    @property
    def tokens(self) -> TokenManager:
        if self._tokens is None:
            self._tokens = TokenManager(self.identity)
        return self._tokens

    def lock(self, *key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def is_connected(self, ctx: AccountContext) -> bool:
        return await load_connection(ctx) is not None

    async def client(self, ctx: AccountContext) -> XeroClient:
        credentials = self.credentials
        if credentials is None:
            raise _not_configured()
        connection = await self.tokens.connection(ctx)
        return XeroClient(
            self.http,
            credentials.endpoints.api,
            connection.tenant_id,
            AccountTokens(self.tokens, ctx),
            self.limiters.for_realm(connection.tenant_id),
            self.limits,
        )

    async def setup(self, client: XeroClient) -> organisation.OrganisationSetup:
        found = self._setups.get(client.tenant_id)
        if found is None:
            async with self.lock(client.tenant_id, "setup"):
                found = self._setups.get(client.tenant_id)
                if found is None:
                    found = self._setups[client.tenant_id] = await organisation.load(client)
        return found

    def forget_setup(self, tenant_id: str) -> None:
        self._setups.pop(tenant_id, None)

    def start_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # hooks

    @hookimpl
    def settings_schema(self) -> type[XeroSettings]:
        return XeroSettings

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> Sequence[BaseRoute]:
        return [
            Route("/connect", oauth.connect_route(plugin, self), methods=["GET"]),
            Route("/" + oauth.CALLBACK_PATH, oauth.callback_route(plugin, self), methods=["GET"]),
            Route("/disconnect", oauth.disconnect_route(plugin, self), methods=["POST"]),
            Route("/" + WEBHOOK_PATH, webhooks.receiver(plugin, self), methods=["POST"]),
        ]

    @hookimpl
    async def integration_card(self, ctx: AccountContext) -> IntegrationCard:
        return await card.integration_card(ctx, self)

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> Sequence[BackgroundTask]:
        async def contacts(ctx: AccountContext) -> None:
            await contacts_import.run(ctx, self)

        return [BackgroundTask(name="xero-contacts", every_seconds=CONTACTS_EVERY_SECONDS, run=contacts)]

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        await self._require_connection(ctx)
        await receipts.on_payment(ctx, self, payment)

    @hookimpl
    async def on_invoice_change(self, ctx: DeliveryContext, change: InvoiceChange) -> None:
        await self._require_connection(ctx)
        await invoices.on_invoice_change(ctx, self, change)

    async def _require_connection(self, ctx: DeliveryContext) -> None:
        """Never connected, or disconnected on purpose: nothing to book (a lost token pauses instead)."""
        if not await self.is_connected(ctx):
            raise Skip("Xero is not connected for this account")

    @hookimpl
    async def on_notification(self, ctx: DeliveryContext, notification: Notification) -> None:
        await webhooks.handle(ctx, self, notification)

    @hookimpl
    async def is_first_invoice(self, ctx: AccountContext, customer_id: str, invoice_id: str) -> bool:
        """The customer's earliest non-voided ACCREC invoice in Xero is `invoice_id` (ids are Xero's)."""
        return await facts.is_first_invoice(await self.client(ctx), customer_id, invoice_id)

    @staticmethod
    @hookimpl
    def register_sandboxes() -> list[SandboxSpec]:
        return sandbox_specs()

    @hookimpl
    async def shutdown(self, plugin: PluginContext) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.http.aclose()


def _not_configured() -> Exception:
    from .errors import ReauthorizationNeeded

    return ReauthorizationNeeded("Xero is not configured: set LEDGERBRIDGE_XERO_CLIENT_ID and _CLIENT_SECRET")


# the sandbox


def _add_sandbox_arguments(parser: argparse.ArgumentParser) -> None:
    from ledgerbridge_xero import sandbox

    sandbox.add_arguments(parser)


def _server_url(sandbox_base_url: str) -> str:
    """Mounted by `serve` at <server>/sandbox/xero; standalone, the server is LEDGERBRIDGE_PUBLIC_URL."""
    if sandbox_base_url.rstrip("/").endswith(SANDBOX_MOUNT):
        return sandbox_base_url.rstrip("/")[: -len(SANDBOX_MOUNT)]
    return os.environ.get("LEDGERBRIDGE_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")


def _create_sandbox(args: argparse.Namespace, base_url: str) -> Any:
    from ledgerbridge_xero import sandbox

    config = sandbox.config_from_args(args, base_url)
    if not has_xero_credentials() and not any(app.client_id == SANDBOX_CLIENT_ID for app in config.apps):
        server = _server_url(base_url)  # the app this server uses when no Xero credentials are configured
        config.apps.append(
            sandbox.AppRegistration(
                client_id=SANDBOX_CLIENT_ID,
                client_secret=SANDBOX_CLIENT_SECRET,
                redirect_uris=[f"{server}/plugins/xero/{oauth.CALLBACK_PATH}"],
                webhook_url=f"{server}/plugins/xero/{WEBHOOK_PATH}",
                webhook_key=SANDBOX_WEBHOOK_KEY,
            )
        )
    return sandbox.create_app(config)


def sandbox_specs() -> list[SandboxSpec]:
    return [
        SandboxSpec(
            name="xero",
            description="a local emulator of Xero (identity, Accounting API, webhooks)",
            add_arguments=_add_sandbox_arguments,
            create_app=_create_sandbox,
            mount_in_serve=not has_xero_credentials(),
            title="Xero sandbox",
            home_path="/organisations",
            acts_as="see each Xero organisation's books; act as the Xero user through /control",
            state_option="--xero-state-dir",
        )
    ]
