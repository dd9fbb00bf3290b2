"""The QuickBooks connection and its tokens, kept by the core's `ledgerbridge.vendor.TokenManager`: encrypted at
rest (ctx secrets), one refresh per expiry in every process sharing the store, rotation saved first.

Intuit's refresh token rotates on every refresh and the previous one dies 24 h later, so the newest pair is
stored before the new access token is used. `invalid_grant` means the user must reconnect: deliveries pause.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from ledgerbridge import AccountContext, vendor
from ledgerbridge.vendor import AccountTokens, GrantRefused

from . import errors
from .oauth_client import InvalidGrantError, OAuthApp, TokenResponse

__all__ = ["AccountTokens", "Connection", "TokenManager", "load_connection", "save_connection"]

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


SECRETS = vendor.SecretGrant(SECRET, Connection)
load_connection = SECRETS.load
save_connection = SECRETS.save


class IntuitGrants(vendor.SecretGrant[Connection]):
    """Where a QuickBooks connection lives (the account's secrets) and how Intuit renews it."""

    def __init__(self, oauth: OAuthApp) -> None:
        super().__init__(SECRET, Connection)
        self.oauth = oauth

    async def renew(self, ctx: AccountContext, grant: Connection) -> Connection:
        try:
            tokens = await asyncio.to_thread(self.oauth.refresh, grant.refresh_token)  # intuitlib blocks
        except InvalidGrantError as exc:
            raise GrantRefused(str(exc)) from exc
        now = ctx.now()
        return msgspec.structs.replace(
            grant,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=now + tokens.expires_in,
            refresh_expires_at=now + tokens.x_refresh_token_expires_in,
        )

    def missing(self, ctx: AccountContext) -> Exception:
        return errors.ReauthorizationNeeded("QuickBooks is not connected for this account: use QB Connect")

    async def refused(self, ctx: AccountContext, error: GrantRefused) -> Exception:
        cause = error.__cause__
        details = cause.details if isinstance(cause, errors.QuickBooksError) else {}
        await ctx.log(
            "QuickBooks refused the refresh token (invalid_grant): reconnect needed", level="error", **details
        )
        return errors.ReauthorizationNeeded(
            "QuickBooks refused the refresh token (invalid_grant): reconnect with QB Connect",
            status=details.get("status"),
            intuit_tid=details.get("vendor_transaction_id"),
        )


class TokenManager(vendor.TokenManager[Connection]):
    """Access tokens for every connected account (`refreshes` counts calls to Intuit's token endpoint)."""

    def __init__(self, oauth: OAuthApp) -> None:
        super().__init__(IntuitGrants(oauth), early_seconds=EARLY_REFRESH_SECONDS)

    async def grant(self, ctx: AccountContext) -> Connection:
        cached = self.cached(ctx.account_id) is not None
        found = await super().grant(ctx)
        if not cached and (await ctx.state()).external_id != found.realm_id:
            # sealed: tokens are used only for the company bound to this very account
            self.forget(ctx.account_id)
            raise errors.ReauthorizationNeeded(
                f"QuickBooks company {found.realm_id} is not bound to this account: connect it again"
            )
        return found

    connection = grant


def describe(connection: Connection | None) -> dict[str, Any]:
    if connection is None:
        return {}
    return {"realm_id": connection.realm_id, "company": connection.company_name}
