"""The plugin's long-lived state for one server: credentials, HTTP client, limiters, tokens, company caches."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
from ledgerbridge import AccountContext, PluginContext

from . import errors
from .batcher import Batchers
from .client import QuickBooksClient
from .company import CompanySetup, load_company
from .limiter import batch_limiters, realm_limiters
from .oauth_client import OAuthApp
from .settings import Credentials, Limits, credentials_from_env, limits_from_env
from .tokens import AccountTokens, TokenManager

CALLBACK_PATH = "callback"
WEBHOOK_PATH = "webhooks"


class Service:
    def __init__(
        self,
        plugin: PluginContext,
        *,
        credentials: Credentials | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.plugin = plugin
        self._credentials = credentials
        self.limits = limits or limits_from_env()
        self.http = httpx.AsyncClient(timeout=self.limits.timeout)
        self.limiters = realm_limiters(plugin, self.limits)
        self.batchers = Batchers(batch_limiters(plugin, self.limits))  # receipts' creates, batched in a backlog
        self._tokens: TokenManager | None = None
        self._companies: dict[str, CompanySetup] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self.email_query_refused: set[str] = set()  # realms whose query language refuses PrimaryEmailAddr
        self.clients: list[QuickBooksClient] = []  # every client made, for call counting in benchmarks
        self.background: set[asyncio.Task[None]] = set()

    @property
    def credentials(self) -> Credentials | None:
        if self._credentials is None:
            self._credentials = credentials_from_env(self.plugin.sandbox_url("quickbooks"))
        return self._credentials

    def require_credentials(self) -> Credentials:
        found = self.credentials
        if found is None:
            raise errors.ReauthorizationNeeded(
                "QuickBooks is not configured: set LEDGERBRIDGE_QBO_CLIENT_ID and LEDGERBRIDGE_QBO_CLIENT_SECRET"
            )
        return found

    @property
    def oauth(self) -> OAuthApp:
        return OAuthApp(self.require_credentials(), self.plugin.url(CALLBACK_PATH))

    @property
    def tokens(self) -> TokenManager:
        if self._tokens is None:
            self._tokens = TokenManager(self.oauth)
        return self._tokens

    def lock(self, *key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def client(self, ctx: AccountContext) -> QuickBooksClient:
        connection = await self.tokens.connection(ctx)
        client = QuickBooksClient(
            self.http,
            self.require_credentials().api_url,
            connection.realm_id,
            AccountTokens(self.tokens, ctx),
            self.limiters.for_realm(connection.realm_id),
            self.limits,
        )
        self.clients.append(client)
        if len(self.clients) > 10_000:
            del self.clients[:5_000]
        return client

    async def company(self, client: QuickBooksClient) -> CompanySetup:
        """The company's country, tax codes and accounts: read once per realm per process (one batch call)."""
        found = self._companies.get(client.realm_id)
        if found is None:
            async with self.lock(client.realm_id, "company"):
                found = self._companies.get(client.realm_id)
                if found is None:
                    found = await load_company(self.batchers.batch_client(client))  # a batch: both limits
                    self._companies[client.realm_id] = found
        return found

    def forget_company(self, realm_id: str) -> None:
        self._companies.pop(realm_id, None)

    def start_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def close(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.batchers.close()
        await self.http.aclose()
