"""Bearer tokens for a vendor client, and the one rotation-safe OAuth refresh.

`TokenSource` is what `VendorClient` asks: the token to send, and a new one after a 401. `TokenManager` keeps
every account's OAuth grant (encrypted at rest through the plugin's `GrantStore`, usually `ctx` secrets) and
refreshes it **once per expiry**: one task per process (an asyncio lock), one process among all that share the
store (`ctx.exclusive`), double-checked so the waiters use the winner's token. Refresh tokens rotate, so the
new pair is saved before the new access token is used; a refused refresh token (`GrantRefused`) asks the user
to reconnect, unless the user reconnected meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import msgspec

if TYPE_CHECKING:
    from ledgerbridge.context import AccountContext

EARLY_REFRESH_SECONDS = 60.0  # refresh a little before expiry rather than earn a 401
REFRESH_HOLD_SECONDS = 90.0  # longer than a token endpoint call may take


class TokenSource(Protocol):
    async def access_token(self) -> str: ...

    async def refresh(self, rejected: str) -> str | None:
        """A token to use instead of `rejected` (which got a 401), or None when there is no other."""
        ...


class StaticToken:
    """A bearer that never changes (a private integration token, an API key)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def access_token(self) -> str:
        return self._token

    async def refresh(self, rejected: str) -> str | None:
        return None


class Grant(Protocol):
    """An OAuth grant as the plugin stores it (a msgspec Struct with at least these members)."""

    @property
    def access_token(self) -> str: ...

    @property
    def refresh_token(self) -> str: ...

    @property
    def access_expires_at(self) -> float: ...


class GrantRefused(Exception):
    """The vendor refused the refresh token (`invalid_grant`): only the user can mend it."""


G = TypeVar("G", bound=Grant)


class GrantStore(Protocol[G]):
    """The plugin's side of a `TokenManager`: where its grant lives and how its vendor renews it."""

    async def load(self, ctx: AccountContext) -> G | None: ...

    async def save(self, ctx: AccountContext, grant: G) -> None: ...

    async def renew(self, ctx: AccountContext, grant: G) -> G:
        """The grant after a call to the vendor's token endpoint; raises `GrantRefused` on invalid_grant."""
        ...

    def missing(self, ctx: AccountContext) -> Exception:
        """The error (a `ReauthorizationRequired`) when there is no grant to use."""
        ...

    async def refused(self, ctx: AccountContext, error: GrantRefused) -> Exception:
        """Log the refusal on the account's activity and return the error to raise."""
        ...


class SecretGrant(Generic[G]):
    """The load and save of a `GrantStore` for a grant kept in one of the account's secrets (encrypted at
    rest); a plugin subclasses it and adds `renew`, `missing` and `refused`."""

    def __init__(self, secret: str, kind: type[G]) -> None:
        self.secret = secret
        self.kind = kind

    async def load(self, ctx: AccountContext) -> G | None:
        stored: dict[str, Any] | None = await ctx.get_secret(self.secret)
        return msgspec.convert(stored, self.kind) if stored else None

    async def save(self, ctx: AccountContext, grant: G) -> None:
        await ctx.put_secret(self.secret, msgspec.to_builtins(grant))


class TokenManager(Generic[G]):
    """Access tokens of every connected account of one plugin; `refreshes` counts token-endpoint calls."""

    def __init__(self, store: GrantStore[G], *, early_seconds: float = EARLY_REFRESH_SECONDS) -> None:
        self.store = store
        self.early_seconds = early_seconds
        self.refreshes = 0
        self._locks: dict[str, asyncio.Lock] = {}
        self._cache: dict[str, G] = {}

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    def remember(self, account_id: str, grant: G) -> None:
        self._cache[account_id] = grant

    def cached(self, account_id: str) -> G | None:
        return self._cache.get(account_id)

    def lock(self, account_id: str) -> asyncio.Lock:
        """Held while this process refreshes the account's grant (hold it too when replacing the grant)."""
        return self._locks.setdefault(account_id, asyncio.Lock())

    def for_account(self, ctx: AccountContext) -> AccountTokens[G]:
        return AccountTokens(self, ctx)

    async def grant(self, ctx: AccountContext) -> G:
        found = self._cache.get(ctx.account_id)
        if found is None:
            found = await self.store.load(ctx)
            if found is None:
                raise self.store.missing(ctx)
            self._cache[ctx.account_id] = found
        return found

    def _fresh(self, grant: G, ctx: AccountContext) -> bool:
        return grant.access_expires_at - self.early_seconds > ctx.now()

    async def access_token(self, ctx: AccountContext) -> str:
        grant = await self.grant(ctx)
        if not self._fresh(grant, ctx):
            return await self.refresh(ctx, grant.access_token)
        return grant.access_token

    async def refresh(self, ctx: AccountContext, rejected: str) -> str:
        """A new access token unless another task or replica already replaced `rejected` (then that one)."""
        async with self.lock(ctx.account_id), ctx.exclusive("token-refresh", hold_seconds=REFRESH_HOLD_SECONDS):
            stored = await self.store.load(ctx)
            if stored is None:
                self.forget(ctx.account_id)
                raise self.store.missing(ctx)
            if stored.access_token != rejected and self._fresh(stored, ctx):
                self._cache[ctx.account_id] = stored
                return stored.access_token
            try:
                self.refreshes += 1
                renewed = await self.store.renew(ctx, stored)
            except GrantRefused as exc:
                latest = await self.store.load(ctx)
                if latest is not None and latest.refresh_token != stored.refresh_token:
                    self._cache[ctx.account_id] = latest  # the user reconnected while this refresh was under way
                    return latest.access_token
                self.forget(ctx.account_id)
                raise await self.store.refused(ctx, exc) from exc
            await self.store.save(ctx, renewed)  # the rotated refresh token is durable before anything uses it
            self._cache[ctx.account_id] = renewed
            return renewed.access_token


class AccountTokens(Generic[G]):
    """One account's `TokenSource`, as a client sees it."""

    def __init__(self, manager: TokenManager[G], ctx: AccountContext) -> None:
        self._manager = manager
        self._ctx = ctx

    async def access_token(self) -> str:
        return await self._manager.access_token(self._ctx)

    async def refresh(self, rejected: str) -> str | None:
        return await self._manager.refresh(self._ctx, rejected)
