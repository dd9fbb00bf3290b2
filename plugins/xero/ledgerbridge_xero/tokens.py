"""The connection and its tokens, kept by the core's `ledgerbridge.vendor.TokenManager`: encrypted at rest
(ctx secrets), one refresh per expiry across replicas, the rotated refresh token saved before the new access
token is used. `invalid_grant` means reconnecting."""

from __future__ import annotations

import msgspec
from ledgerbridge import AccountContext, vendor
from ledgerbridge.vendor import AccountTokens, GrantRefused

from . import errors
from .identity import IdentityClient, InvalidGrantError

__all__ = ["AccountTokens", "Connection", "TokenManager", "load_connection", "save_connection"]

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


SECRETS = vendor.SecretGrant(SECRET, Connection)
load_connection = SECRETS.load
save_connection = SECRETS.save


class XeroGrants(vendor.SecretGrant[Connection]):
    """Where a Xero connection lives (the account's secrets) and how Xero's identity service renews it."""

    def __init__(self, identity: IdentityClient) -> None:
        super().__init__(SECRET, Connection)
        self.identity = identity

    async def renew(self, ctx: AccountContext, grant: Connection) -> Connection:
        try:
            tokens = await self.identity.refresh(grant.refresh_token)
        except InvalidGrantError as exc:
            raise GrantRefused(str(exc)) from exc
        return msgspec.structs.replace(
            grant,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=ctx.now() + tokens.expires_in,
        )

    def missing(self, ctx: AccountContext) -> Exception:
        return errors.ReauthorizationNeeded("Xero is not connected for this account: use Connect to Xero")

    async def refused(self, ctx: AccountContext, error: GrantRefused) -> Exception:
        await ctx.log("Xero refused the refresh token (invalid_grant): reconnect needed", level="error")
        return errors.ReauthorizationNeeded("Xero refused the refresh token: reconnect to Xero", status=400)


class TokenManager(vendor.TokenManager[Connection]):
    """Access tokens for every connected account, refreshed once per expiry across replicas."""

    def __init__(self, identity: IdentityClient) -> None:
        super().__init__(XeroGrants(identity), early_seconds=EARLY_REFRESH_SECONDS)

    connection = vendor.TokenManager.grant
