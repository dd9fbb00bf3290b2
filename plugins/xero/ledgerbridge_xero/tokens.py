"""The connection and its tokens: encrypted at rest (ctx secrets), one refresh at a time per tenant, the
rotated refresh token saved before the new access token is used. `invalid_grant` means reconnecting."""

from __future__ import annotations

import asyncio

import msgspec
from ledgerbridge import AccountContext

from . import errors
from .identity import IdentityClient, InvalidGrantError

SECRET = "connection"
EARLY_REFRESH_SECONDS = 60.0


class Connection(msgspec.Struct, kw_only=True):
    tenant_id: str
    tenant_name: str | None
    connection_id: str
    access_token: str
    refresh_token: str
    access_expires_at: float
    connected_at: float


async def load_connection(ctx: AccountContext) -> Connection | None:
    stored = await ctx.get_secret(SECRET)
    return msgspec.convert(stored, Connection) if stored else None


async def save_connection(ctx: AccountContext, connection: Connection) -> None:
    await ctx.put_secret(SECRET, msgspec.to_builtins(connection))


class TokenManager:
    def __init__(self, identity: IdentityClient) -> None:
        self.identity = identity
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, Connection] = {}

    def lock(self, account_id: str) -> asyncio.Lock:
        return self._locks.setdefault(account_id, asyncio.Lock())

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    def remember(self, account_id: str, connection: Connection) -> None:
        self._cache[account_id] = connection

    async def connection(self, ctx: AccountContext) -> Connection:
        found = self._cache.get(ctx.account_id) or await load_connection(ctx)
        if found is None:
            raise errors.ReauthorizationNeeded("Xero is not connected for this account: use Connect to Xero")
        self._cache[ctx.account_id] = found
        return found

    async def access_token(self, ctx: AccountContext) -> str:
        connection = await self.connection(ctx)
        if connection.access_expires_at - EARLY_REFRESH_SECONDS <= ctx.now():
            return await self.refresh(ctx, connection.access_token)
        return connection.access_token

    async def refresh(self, ctx: AccountContext, rejected: str) -> str:
        """A new access token, unless another task already replaced `rejected` (then that one)."""
        async with self.lock(ctx.account_id):
            stored = await load_connection(ctx)
            if stored is None:
                self.forget(ctx.account_id)
                raise errors.ReauthorizationNeeded("Xero is not connected for this account: use Connect to Xero")
            if stored.access_token != rejected and stored.access_expires_at - EARLY_REFRESH_SECONDS > ctx.now():
                self._cache[ctx.account_id] = stored
                return stored.access_token
            try:
                tokens = await self.identity.refresh(stored.refresh_token)
            except InvalidGrantError as exc:
                latest = await load_connection(ctx)
                if latest is not None and latest.refresh_token != stored.refresh_token:
                    self._cache[ctx.account_id] = latest  # reconnected meanwhile
                    return latest.access_token
                self.forget(ctx.account_id)
                await ctx.log("Xero refused the refresh token (invalid_grant): reconnect needed", level="error")
                raise errors.ReauthorizationNeeded(
                    "Xero refused the refresh token: reconnect to Xero", status=400
                ) from exc
            renewed = msgspec.structs.replace(
                stored,
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                access_expires_at=ctx.now() + tokens.expires_in,
            )
            await save_connection(ctx, renewed)  # the rotated refresh token is durable before anything uses it
            self._cache[ctx.account_id] = renewed
            return renewed.access_token


class AccountTokens:
    """The API client's view of the token store for one account."""

    def __init__(self, manager: TokenManager, ctx: AccountContext) -> None:
        self._manager = manager
        self._ctx = ctx

    async def access_token(self) -> str:
        return await self._manager.access_token(self._ctx)

    async def refresh(self, rejected: str) -> str:
        return await self._manager.refresh(self._ctx, rejected)
