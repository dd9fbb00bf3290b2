"""Per-account connections: which API, which location, which credentials; one shared client per location.

Credentials live in encrypted secrets, never in settings: `token` ({"token"}) for a Private Integration
Token, `oauth` ({"access_token", "refresh_token", "expires_at", "location_id"}) for the marketplace app.
With neither, and the CRM sandbox mounted in this server, the account gets a sandbox location of its own
(`sandbox` secret: {"location_id", "token"}): the first account the seeded one, every other a new one made
through the sandbox's control API, so no two accounts ever share a location. With neither and no sandbox
mounted (a production server), the account is simply not connected.

Each account is sealed to the location bound to it: a location bound to another account is never used
(the account pauses with the reason on its card), and the client refuses to call any other location.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from ledgerbridge import (
    AccountContext,
    ExternalIdTaken,
    PermanentFailure,
    PluginContext,
    ReauthorizationRequired,
    RetryLater,
)
from ledgerbridge.cache import TtlCache
from ledgerbridge.web.outbound import OutboundGuard

from ledgerbridge_crmconnect.client import (
    LOCATION_IN_FLIGHT,
    LOCATION_LIMIT,
    LOCATION_WINDOW_SECONDS,
    CrmApiError,
    CrmClient,
    CrmTransportError,
    RateLimiter,
    StaticToken,
)
from ledgerbridge_crmconnect.settings import HIGHLEVEL_API_URL, CrmConnectSettings

SANDBOX_NAME = "crmconnect"
# What `ledgerbridge serve` seeds into the mounted sandbox and what accounts use there by default.
SANDBOX_LOCATION_ID = "lbSandboxLocation001"
SANDBOX_TOKEN = "ledgerbridge-sandbox-pit"

CLIENT_ID_ENV = "LEDGERBRIDGE_CRM_CLIENT_ID"
CLIENT_SECRET_ENV = "LEDGERBRIDGE_CRM_CLIENT_SECRET"
TOKEN_SECRET = "token"
OAUTH_SECRET = "oauth"
SANDBOX_SECRET = "sandbox"
REFRESH_LOCK_SECONDS = 60.0
REFRESH_EARLY_SECONDS = 300.0

AuthKind = Literal["token", "oauth", "sandbox"]


@dataclass(frozen=True)
class Resolved:
    """Where and how one account reaches the CRM."""

    base_url: str
    location_id: str
    auth: AuthKind | None
    sandbox: bool
    settings: CrmConnectSettings

    @property
    def ready(self) -> bool:
        return self.auth is not None and bool(self.location_id)


async def resolve(ctx: AccountContext) -> Resolved:
    settings: CrmConnectSettings = await ctx.settings()
    token = await ctx.get_secret(TOKEN_SECRET)
    oauth = await ctx.get_secret(OAUTH_SECRET)
    sandbox_url = ctx.plugin_context.sandbox_url(SANDBOX_NAME)
    has_credentials = token is not None or oauth is not None
    if settings.api_base_url:
        base_url = settings.api_base_url.rstrip("/")
    elif sandbox_url and (not has_credentials or (token or {}).get("api") == "sandbox"):
        base_url = sandbox_url  # no credentials, or a token that connect found valid in the mounted sandbox
    else:
        base_url = HIGHLEVEL_API_URL
    sandbox = settings.sandbox or (sandbox_url is not None and base_url == sandbox_url)
    auth: AuthKind | None = "token" if token else "oauth" if oauth else "sandbox" if sandbox else None
    location_id = settings.location_id or str((oauth or {}).get("location_id") or "")
    if not location_id and auth == "sandbox":
        location_id = await _sandbox_location(ctx, base_url, sandbox_url)
    return Resolved(base_url=base_url, location_id=location_id, auth=auth, sandbox=sandbox, settings=settings)


async def sandbox_token(ctx: AccountContext) -> str:
    assigned = await ctx.get_secret(SANDBOX_SECRET)
    return str((assigned or {}).get("token") or SANDBOX_TOKEN)


async def _sandbox_location(ctx: AccountContext, base_url: str, mounted_url: str | None) -> str:
    """This account's own location in the sandbox: assigned once, the seeded one only to the first account."""
    if (assigned := await _assigned_sandbox_location(ctx, base_url, mounted_url)) is not None:
        return assigned
    if base_url != mounted_url:
        return ""  # a standalone sandbox: its location is set in the settings (by connect), never guessed
    # The card, the poller and the start of the server may all ask at once: one of them assigns, in every
    # replica, so the account never ends up bound to one new location while its secret names another.
    async with ctx.exclusive("sandbox-location", hold_seconds=30.0, wait_seconds=30.0):
        if (assigned := await _assigned_sandbox_location(ctx, base_url, mounted_url)) is not None:
            return assigned
        return await _assign_sandbox_location(ctx, base_url)


async def _assigned_sandbox_location(ctx: AccountContext, base_url: str, mounted_url: str | None) -> str | None:
    assigned = await ctx.get_secret(SANDBOX_SECRET)
    if not assigned:
        return None
    location_id, token = str(assigned["location_id"]), str(assigned["token"])
    if location_id != SANDBOX_LOCATION_ID and base_url == mounted_url:
        await _sandbox_has(ctx, base_url, location_id, token)
    return location_id


async def _assign_sandbox_location(ctx: AccountContext, base_url: str) -> str:
    holder = await ctx.plugin_context.account_for_external_id(SANDBOX_LOCATION_ID)
    if holder is None or holder.account_id == ctx.account_id:
        try:
            await ctx.bind_external_id(SANDBOX_LOCATION_ID)
        except ExternalIdTaken:  # another account claimed it a moment ago: make one of our own below
            pass
        else:
            await ctx.put_secret(SANDBOX_SECRET, {"location_id": SANDBOX_LOCATION_ID, "token": SANDBOX_TOKEN})
            return SANDBOX_LOCATION_ID
    location_id = "lb" + "".join(ch for ch in ctx.account_id if ch.isalnum())[:12] + secrets.token_hex(4)
    token = "ledgerbridge-sandbox-" + secrets.token_urlsafe(16)
    if not await _sandbox_has(ctx, base_url, location_id, token):
        return ""
    await ctx.bind_external_id(location_id)
    await ctx.put_secret(SANDBOX_SECRET, {"location_id": location_id, "token": token})
    await ctx.log(f"CRM Connect sandbox location {location_id} made for this account")
    return location_id


_ensured: set[tuple[str, str]] = set()


async def _sandbox_has(ctx: AccountContext, base_url: str, location_id: str, token: str) -> bool:
    """Make sure the mounted sandbox holds this account's location (once per process: a sandbox without a
    state file forgets its locations when the server restarts)."""
    if (base_url, location_id) in _ensured:
        return True
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.post(
                f"{base_url}/_control/locations", json={"id": location_id, "name": ctx.account.name, "token": token}
            )
    except httpx.HTTPError as exc:
        await ctx.log(f"could not make a CRM sandbox location for this account: {exc}", level="warning")
        return False
    if response.status_code >= 300 and "already exists" not in response.text:
        await ctx.log(f"the CRM sandbox refused a location for this account ({response.status_code})", level="warning")
        return False
    _ensured.add((base_url, location_id))
    return True


async def binding_conflict(ctx: AccountContext, location_id: str) -> str | None:
    """Why `location_id` cannot be this account's (another account holds it), in plain words; else None."""
    holder = await ctx.plugin_context.account_for_external_id(location_id)
    if holder is None or holder.account_id == ctx.account_id:
        return None
    return (
        f"CRM location {location_id} is already connected to the account {holder.account.name!r}. "
        "A location serves one account: disconnect it there first, or connect this account to another location."
    )


async def start_account(ctx: AccountContext) -> None:
    """At server start: bind the account's location. A problem with one account (a conflict, settings that no
    longer validate, an unreachable sandbox) is logged and shown on its card, and never stops the server."""
    try:
        await ensure_bound(ctx, await resolve(ctx))
    except Exception as exc:
        logging.getLogger("ledgerbridge.plugins.crmconnect").exception("account %s cannot start", ctx.account_id)
        reason = f"CRM Connect could not start for this account: {exc}"
        with contextlib.suppress(Exception):  # the store itself is failing: the server log has it
            await ctx.pause(reason[:500])


async def ensure_bound(ctx: AccountContext, resolved: Resolved) -> bool:
    """Keep the routing of webhooks (`locationId` → account) in step with the settings. False, with the
    account paused and the reason on its card, when the location belongs to another account."""
    state = await ctx.state()
    wanted = resolved.location_id or None
    if state.external_id == wanted:
        return True
    conflict = await binding_conflict(ctx, wanted) if wanted else None
    if conflict is None:
        try:
            await ctx.bind_external_id(wanted)
        except Exception:  # claimed by another account between the check and the write
            conflict = await binding_conflict(ctx, wanted or "")
            if conflict is None:
                raise
        else:
            if state.paused_reason and state.paused_reason.startswith("CRM location "):
                await ctx.resume()  # the conflict that paused it is gone
            return True
    await ctx.pause(conflict)  # logged once, when the reason is new
    return False


class OAuthTokens:
    """An OAuth grant with rotating refresh tokens: the rotated pair is stored before the token is used."""

    def __init__(self, ctx: AccountContext, base_url: str, http: httpx.AsyncClient, lock: asyncio.Lock) -> None:
        self._ctx = ctx
        self._base_url = base_url
        self._http = http
        self._lock = lock

    async def access_token(self) -> str:
        grant = await self._grant()
        if float(grant.get("expires_at", 0)) - REFRESH_EARLY_SECONDS <= self._ctx.now():
            return await self._refresh(grant["access_token"])
        return str(grant["access_token"])

    async def refresh(self, rejected: str) -> str | None:
        return await self._refresh(rejected)

    async def _grant(self) -> dict[str, Any]:
        grant: dict[str, Any] | None = await self._ctx.get_secret(OAUTH_SECRET)
        if grant is None:
            raise ReauthorizationRequired("the CRM Connect OAuth grant is missing; connect again")
        return grant

    async def _refresh(self, stale_access_token: str) -> str:
        # one refresh per expiry: one task here, and one process among all that share the store
        async with self._lock, self._ctx.exclusive("oauth-refresh", hold_seconds=REFRESH_LOCK_SECONDS + 30):
            grant = await self._grant()
            if grant["access_token"] != stale_access_token:  # another task refreshed meanwhile
                return str(grant["access_token"])
            client_id, client_secret = os.environ.get(CLIENT_ID_ENV), os.environ.get(CLIENT_SECRET_ENV)
            if not client_id or not client_secret:
                raise ReauthorizationRequired(f"{CLIENT_ID_ENV}/{CLIENT_SECRET_ENV} are not set")
            form = {
                "client_id": client_id,
                "client_secret": client_secret,
                "grant_type": "refresh_token",
                "refresh_token": grant["refresh_token"],
                "user_type": "Location",
            }
            try:
                response = await self._http.post(f"{self._base_url}/oauth/token", data=form)
            except httpx.TransportError as exc:
                raise RetryLater(f"token endpoint unreachable: {exc}") from exc
            if response.status_code in (400, 401, 403):
                raise ReauthorizationRequired(f"the CRM refused the refresh token ({response.status_code})")
            if not response.is_success:
                raise RetryLater(f"token endpoint answered {response.status_code}")
            body = response.json()
            rotated = {
                "access_token": body["access_token"],
                "refresh_token": body.get("refresh_token", grant["refresh_token"]),
                "expires_at": self._ctx.now() + float(body.get("expires_in", 86_399)),
                "location_id": body.get("locationId") or grant.get("location_id"),
            }
            # Store first: the old refresh token is already spent, losing the new one would strand the grant.
            await self._ctx.put_secret(OAUTH_SECRET, rotated)
            return str(rotated["access_token"])


#: how long a delivery's client setup is reused without reading the store (another replica's change shows after it)
SETUP_SECONDS = 1.0


class Connections:
    """The plugin's shared HTTP client, one rate limiter per location, cached sandbox webhook keys.

    A location's limiter keeps HighLevel's 100 requests per 10 s in the store when replicas share it (all of
    them together within the location's limit), else in this process (`RateLimiter`, which reads the headers).
    """

    def __init__(self, plugin: PluginContext) -> None:
        self._http: httpx.AsyncClient | None = None
        self._limiters = plugin.limiters(
            "location", LOCATION_LIMIT, LOCATION_WINDOW_SECONDS, LOCATION_IN_FLIGHT, local=lambda _key: RateLimiter(),
            longest_hold=LOCATION_WINDOW_SECONDS * 1.1,
        )  # fmt: skip
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._sandbox_keys: dict[str, dict[str, str]] = {}
        self._setups: TtlCache[tuple[Resolved, str | None]] = TtlCache(SETUP_SECONDS)

    @property
    def http(self) -> httpx.AsyncClient:
        """Made on first use, inside the server's event loop."""
        if self._http is None:
            # every request's address is checked: no credentials to private, link-local or metadata addresses
            guard = OutboundGuard(allow_loopback=True)
            self._http = httpx.AsyncClient(timeout=30.0, event_hooks={"request": [guard]})
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def client(self, ctx: AccountContext, resolved: Resolved | None = None) -> tuple[CrmClient, Resolved]:
        """A client for the location bound to this very account. How the account is connected (three store reads
        and a decryption per token) is read again after a second at most, and at once after any change of its
        settings, secrets or binding in this process, as for webhooks."""
        if resolved is None:
            setup = await self._setups.get(ctx.account_id, lambda: self._setup(ctx, None), version=ctx.config_version)
        else:
            setup = await self._setup(ctx, resolved)
        resolved, token = setup
        tokens: Any
        if token is not None:
            tokens = StaticToken(token)
        else:
            lock = self._refresh_locks.setdefault(ctx.account_id, asyncio.Lock())
            tokens = OAuthTokens(ctx, resolved.base_url, self.http, lock)
        limiter = self._limiters.for_realm(f"{resolved.base_url} {resolved.location_id}")
        return CrmClient(resolved.base_url, tokens, http=self.http, limiter=limiter, max_retries=3), resolved

    async def _setup(self, ctx: AccountContext, resolved: Resolved | None) -> tuple[Resolved, str | None]:
        """How the account is connected, checked to be bound to its location, and its static token (None: OAuth)."""
        resolved = resolved or await resolve(ctx)
        if not resolved.ready:
            raise ReauthorizationRequired("CRM Connect is not connected: set a location and a token or OAuth grant")
        if (await ctx.state()).external_id != resolved.location_id:
            # sealed: a client is only made for the location bound to this very account
            conflict = await binding_conflict(ctx, resolved.location_id)
            raise ReauthorizationRequired(
                conflict or f"CRM location {resolved.location_id} is not bound to this account"
            )
        if resolved.auth == "token":
            secret = await ctx.get_secret(TOKEN_SECRET) or {}
            return resolved, str(secret.get("token", ""))
        if resolved.auth == "oauth":
            return resolved, None
        return resolved, await sandbox_token(ctx)

    def cached_sandbox_keys(self, base_url: str) -> dict[str, str] | None:
        return self._sandbox_keys.get(base_url)

    async def sandbox_keys(self, base_url: str) -> dict[str, str]:
        """The sandbox's webhook public keys from its control API, fetched once per sandbox (at connect time, or
        from the sandbox mounted in this very server: never because an unsigned webhook asked for it)."""
        if base_url not in self._sandbox_keys:
            response = await self.http.get(f"{base_url}/_control/webhook-keys")
            response.raise_for_status()
            self._sandbox_keys[base_url] = dict(response.json())
        return self._sandbox_keys[base_url]


@contextlib.asynccontextmanager
async def steering() -> AsyncIterator[None]:
    """Turn the client's errors into what the pipeline understands (retry, pause, dead-letter)."""
    try:
        yield
    except CrmTransportError as exc:
        raise RetryLater(str(exc)) from exc
    except CrmApiError as exc:
        if exc.status == 401:
            raise ReauthorizationRequired(f"CRM Connect refused the credentials: {exc.message}") from exc
        if exc.retryable:
            raise RetryLater(str(exc), retry_after=exc.retry_after) from exc
        raise PermanentFailure(str(exc)) from exc
