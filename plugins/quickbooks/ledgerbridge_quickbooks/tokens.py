"""The token store: encrypted at rest (ctx secrets), one refresh at a time per company in every process sharing
the store (`ctx.exclusive`), rotation saved first.

Intuit's refresh token rotates on every refresh and the previous one dies 24 h later, so the newest pair is
stored before the new access token is used. `invalid_grant` means the user must reconnect: deliveries pause.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from ledgerbridge import AccountContext

from . import errors
from .oauth_client import InvalidGrantError, OAuthApp, TokenResponse

SECRET = "connection"
EARLY_REFRESH_SECONDS = 60.0  # refresh a little before expiry rather than earn a 401


class Connection(msgspec.Struct, kw_only=True):
    realm_id: str
    access_token: str
    refresh_token: str
    access_expires_at: float
    refresh_expires_at: float
    connected_at: float
    company_name: str | None = None
    country: str | None = None


def connection_from(tokens: TokenResponse, realm_id: str, now: float, connected_at: float) -> Connection:
    return Connection(
        realm_id=realm_id,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        access_expires_at=now + tokens.expires_in,
        refresh_expires_at=now + tokens.x_refresh_token_expires_in,
        connected_at=connected_at,
    )


async def load_connection(ctx: AccountContext) -> Connection | None:
    stored = await ctx.get_secret(SECRET)
    return msgspec.convert(stored, Connection) if stored else None


async def save_connection(ctx: AccountContext, connection: Connection) -> None:
    await ctx.put_secret(SECRET, msgspec.to_builtins(connection))


class TokenManager:
    """Access tokens for every connected account; `refreshes` counts calls to Intuit's token endpoint."""

    def __init__(self, oauth: OAuthApp) -> None:
        self.oauth = oauth
        self.refreshes = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, Connection] = {}

    def lock(self, realm_id: str) -> asyncio.Lock:
        return self._locks.setdefault(realm_id, asyncio.Lock())

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    def remember(self, account_id: str, connection: Connection) -> None:
        self._cache[account_id] = connection

    async def connection(self, ctx: AccountContext) -> Connection:
        found = self._cache.get(ctx.account_id)
        if found is None:
            found = await load_connection(ctx)
            if found is None:
                raise errors.ReauthorizationNeeded("QuickBooks is not connected for this account: use QB Connect")
            if (await ctx.state()).external_id != found.realm_id:
                # sealed: tokens are used only for the company bound to this very account
                raise errors.ReauthorizationNeeded(
                    f"QuickBooks company {found.realm_id} is not bound to this account: connect it again"
                )
        self._cache[ctx.account_id] = found
        return found

    async def access_token(self, ctx: AccountContext) -> str:
        connection = await self.connection(ctx)
        if connection.access_expires_at - EARLY_REFRESH_SECONDS <= ctx.now():
            return await self.refresh(ctx, connection.access_token)
        return connection.access_token

    async def refresh(self, ctx: AccountContext, rejected: str) -> str:
        """A new access token unless another task already replaced `rejected` (then that one)."""
        current = await self.connection(ctx)
        # one refresh per expiry: one task in this process, then one process among all sharing the store
        async with self.lock(current.realm_id), ctx.exclusive(f"refresh:{current.realm_id}", hold_seconds=90.0):
            stored = await load_connection(ctx)
            if stored is None:
                self.forget(ctx.account_id)
                raise errors.ReauthorizationNeeded("QuickBooks is not connected for this account: use QB Connect")
            fresh = stored.access_expires_at - EARLY_REFRESH_SECONDS > ctx.now()
            if stored.access_token != rejected and fresh:
                self._cache[ctx.account_id] = stored
                return stored.access_token
            try:
                self.refreshes += 1
                tokens = await asyncio.to_thread(self.oauth.refresh, stored.refresh_token)
            except InvalidGrantError as exc:
                latest = await load_connection(ctx)
                if latest is not None and latest.refresh_token != stored.refresh_token:
                    # the user reconnected while this refresh was under way: use the new connection
                    self._cache[ctx.account_id] = latest
                    return latest.access_token
                self.forget(ctx.account_id)
                await ctx.log(
                    "QuickBooks refused the refresh token (invalid_grant): reconnect needed",
                    level="error",
                    **exc.details,
                )
                raise errors.ReauthorizationNeeded(
                    "QuickBooks refused the refresh token (invalid_grant): reconnect with QB Connect",
                    status=exc.status,
                    intuit_tid=exc.intuit_tid,
                ) from exc
            now = ctx.now()
            renewed = msgspec.structs.replace(
                stored,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                access_expires_at=now + tokens.expires_in,
                refresh_expires_at=now + tokens.x_refresh_token_expires_in,
            )
            await save_connection(ctx, renewed)  # the rotated refresh token is durable before anything uses it
            self._cache[ctx.account_id] = renewed
            return renewed.access_token


class AccountTokens:
    """The client's view of the token store for one account."""

    def __init__(self, manager: TokenManager, ctx: AccountContext) -> None:
        self._manager = manager
        self._ctx = ctx

    async def access_token(self) -> str:
        return await self._manager.access_token(self._ctx)

    async def refresh(self, rejected: str) -> str:
        return await self._manager.refresh(self._ctx, rejected)


def describe(connection: Connection | None) -> dict[str, Any]:
    if connection is None:
        return {}
    return {"realm_id": connection.realm_id, "company": connection.company_name}
