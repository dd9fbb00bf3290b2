"""Connecting an account: a Private Integration Token, or HighLevel's OAuth authorization-code flow.

The admin-only routes use the server's admin credential; the OAuth callback is authenticated by the
one-time `state` nonce made when the flow started.
"""

from __future__ import annotations

import os
import re
from html import escape
from typing import Any
from urllib.parse import urlencode

import httpx
from ledgerbridge import AccountContext, PluginContext
from ledgerbridge.web import (
    ApiError,
    admin_submission,
    connection_error_page,
    is_form,
    oauth_error_words,
    require_admin,
)
from ledgerbridge.web.outbound import OutboundGuard, UnresolvableHost, UnsafeUrl, resolve_checked
from ledgerbridge.web.pages import wants_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ledgerbridge_crmconnect.client import CrmApiError, CrmClient, CrmTransportError, StaticToken
from ledgerbridge_crmconnect.connection import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    OAUTH_SECRET,
    SANDBOX_NAME,
    TOKEN_SECRET,
    Connections,
    binding_conflict,
    ensure_bound,
    resolve,
)
from ledgerbridge_crmconnect.settings import HIGHLEVEL_API_URL

HIGHLEVEL_AUTHORIZE_URL = "https://marketplace.gohighlevel.com/oauth/chooselocation"
SCOPES = (
    "contacts.readonly contacts.write invoices.readonly payments/orders.readonly "
    "payments/transactions.readonly payments/subscriptions.readonly conversations/message.write workflows.readonly"
)


async def _account(plugin: PluginContext, request: Request) -> AccountContext:
    require_admin(request)
    account = await plugin.account(request.path_params["account_id"])
    if account is None:
        raise ApiError(404, "no such account")
    return account


CONNECT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Connect CRM Connect</title></head>
<body><main>
<h1>Connect CRM Connect with a Private Integration Token</h1>
<p>In CRM Connect: Settings › Private Integrations › create a token for this sub-account.</p>
<form method="post" action="{action}">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <p><label for="location_id">Location (sub-account) id</label><br>
     <input id="location_id" name="location_id" required value="{location_id}" autocomplete="off"></p>
  <p><label for="token">Private Integration Token</label><br>
     <input id="token" name="token" type="password" autocomplete="off"></p>
  <p><button type="submit">Connect</button> <a href="{back}">Cancel</a></p>
</form>
</main></body></html>
"""


async def connect_page(plugin: PluginContext, request: Request) -> Response:
    """GET: the form a signed-in admin fills in to connect with a token."""
    account = await _account(plugin, request)
    from ledgerbridge.ui.session import csrf_token

    settings = await account.settings()
    page = CONNECT_PAGE.format(
        action=escape(str(request.url)),
        csrf=escape(csrf_token(request)),
        location_id=escape(getattr(settings, "location_id", "") or ""),
        back=escape(plugin.integrations_url(account.account_id)),
    )
    return HTMLResponse(page)


LOCATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHECK_EMAIL = "ledgerbridge-connect-check@example.invalid"


def _field(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None, max_length: int) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, f"{name} must be a non-empty string")
    value = value.strip()
    if len(value) > max_length or not value.isascii() or not value.isprintable():
        raise ApiError(422, f"{name} must be at most {max_length} printable ASCII characters")
    if pattern is not None and not pattern.match(value):
        raise ApiError(422, f"{name} may hold only letters, digits, '-' and '_'")
    return value


async def connect(plugin: PluginContext, request: Request) -> Response:
    """POST {location_id, token?} (JSON, or the connect page's form): connect with a Private Integration Token.

    Everything is checked before anything is saved: the fields, the API URL, that no other account holds the
    location (409), and, with the CRM itself, that the token reaches that location (422 when it does not).
    """
    account = await _account(plugin, request)
    body = await admin_submission(request)
    location_id = _field(body, "location_id", LOCATION_ID, 64)
    token = _field(body, "token", None, 4096)
    settings = await account.settings()
    stored = await account.get_secret(TOKEN_SECRET)
    location_id = location_id or settings.location_id or None
    token = token or (str(stored["token"]) if stored else None)
    if location_id is None or token is None:
        raise ApiError(422, "connecting needs a location_id and a Private Integration Token (token)")
    conflict = await binding_conflict(account, location_id)
    if conflict is not None:
        raise ApiError(409, conflict)
    api, keys = await _validated_api(plugin, settings, location_id, token)
    await account.put_secret(TOKEN_SECRET, {"token": token, "api": api})
    await account.update_settings(location_id=location_id)
    if keys and not settings.webhook_rsa_public_key and not settings.webhook_ed25519_public_key:
        # remembered with the account, so no webhook ever makes the server fetch them again
        await account.update_settings(
            webhook_rsa_public_key=keys["x-wh-signature"], webhook_ed25519_public_key=keys["x-ghl-signature"]
        )
    resolved = await resolve(account)
    if not await ensure_bound(account, resolved):  # lost a race for the location to another account
        await account.delete_secret(TOKEN_SECRET)
        raise ApiError(409, await binding_conflict(account, location_id) or "the location was taken meanwhile")
    await account.resume()
    await account.log(f"CRM Connect connected to location {resolved.location_id} ({resolved.auth})")
    if is_form(request):
        return RedirectResponse(plugin.integrations_url(account.account_id), 303)
    return JSONResponse({"location_id": resolved.location_id, "auth": resolved.auth, "api": resolved.base_url})


async def _validated_api(
    plugin: PluginContext, settings: Any, location_id: str, token: str
) -> tuple[str, dict[str, str] | None]:
    """Where the token works: ("configured" | "sandbox" | "highlevel", the sandbox's webhook keys if any).

    The configured API when there is one; otherwise the sandbox mounted in this server (a sandbox token), then
    HighLevel. Each URL but this server's own is checked (https, public address) before the token goes there.
    """
    mounted = plugin.sandbox_url(SANDBOX_NAME)
    candidates: list[tuple[str, str, bool]] = []
    if settings.api_base_url:
        candidates.append(("configured", settings.api_base_url.rstrip("/"), settings.sandbox))
    else:
        if mounted:
            candidates.append(("sandbox", mounted, True))
        candidates.append(("highlevel", HIGHLEVEL_API_URL, False))
    failures: list[ApiError] = []
    for api, base_url, sandbox in candidates:
        own = base_url == mounted
        if not own:
            try:
                await resolve_checked(base_url, allow_loopback=sandbox)
            except UnresolvableHost as exc:
                failures.append(ApiError(502, f"CRM Connect could not be reached to check the token: {exc}"))
                continue
            except UnsafeUrl as exc:
                raise ApiError(422, f"the CRM API URL is not allowed: {exc}") from None
        hooks = {} if own else {"request": [OutboundGuard(allow_loopback=True)]}
        async with httpx.AsyncClient(timeout=15.0, event_hooks=hooks) as http:
            try:
                await _check_with_crm(http, base_url, location_id, token)
            except ApiError as exc:
                failures.append(exc)
                continue
            # this server's own sandbox is asked for its keys when a webhook comes; another one's are kept now
            return api, await _sandbox_keys(http, base_url) if sandbox and not own else None
    status = 502 if all(failure.status == 502 for failure in failures) else 422
    raise ApiError(status, "; ".join(failure.message for failure in failures))


async def _sandbox_keys(http: httpx.AsyncClient, base_url: str) -> dict[str, str] | None:
    """A sandbox's webhook public keys, read once at connect time."""
    try:
        response = await http.get(f"{base_url}/_control/webhook-keys")
    except httpx.HTTPError:
        return None
    keys = response.json() if response.status_code == 200 else None
    if not isinstance(keys, dict) or not all(
        isinstance(keys.get(k), str) for k in ("x-wh-signature", "x-ghl-signature")
    ):
        return None
    return {k: str(v) for k, v in keys.items()}


async def _check_with_crm(http: httpx.AsyncClient, base_url: str, location_id: str, token: str) -> None:
    """One cheap read scoped to the location: proves the token is valid and reaches that location."""
    client = CrmClient(base_url, StaticToken(token), http=http, max_retries=1)
    try:
        await client.request("GET", "/contacts/search/duplicate", params={"locationId": location_id,
                                                                           "email": CHECK_EMAIL})  # fmt: skip
    except CrmApiError as exc:
        if exc.status in (401, 403):
            raise ApiError(422, f"CRM Connect refused this token for location {location_id}: {exc.message}") from None
        if exc.status in (400, 404, 422):
            raise ApiError(422, f"CRM Connect does not know location {location_id}: {exc.message}") from None
        raise ApiError(502, f"CRM Connect could not check the token right now ({exc.status}); try again") from None
    except CrmTransportError as exc:
        raise ApiError(502, f"CRM Connect could not be reached to check the token: {exc}") from None


async def disconnect(plugin: PluginContext, request: Request) -> Response:
    account = await _account(plugin, request)
    fields = await admin_submission(request)  # a browser's form must carry the session's CSRF token
    fields.pop("account", None)  # the card's form names the account, as the URL does
    if fields:
        raise ApiError(422, f"disconnecting takes no fields, not {', '.join(sorted(map(str, fields)))[:200]}")
    await account.delete_secret(TOKEN_SECRET)
    await account.delete_secret(OAUTH_SECRET)
    await account.bind_external_id(None)
    await account.log("CRM Connect disconnected")
    if is_form(request):
        return RedirectResponse(plugin.integrations_url(account.account_id), 303)
    return JSONResponse({"disconnected": True})


def _oauth_urls(plugin: PluginContext, base_url: str) -> tuple[str, str]:
    """(authorize URL, token URL): HighLevel's, or the sandbox's when the account talks to it."""
    if base_url.rstrip("/") == HIGHLEVEL_API_URL:
        return HIGHLEVEL_AUTHORIZE_URL, f"{HIGHLEVEL_API_URL}/oauth/token"
    return f"{base_url}/oauth/chooselocation", f"{base_url}/oauth/token"


async def start(plugin: PluginContext, request: Request) -> Response:
    """GET: send the admin to the marketplace's location chooser."""
    account = await _account(plugin, request)
    client_id = os.environ.get(CLIENT_ID_ENV)
    if not client_id:
        raise ApiError(409, f"set {CLIENT_ID_ENV} and {CLIENT_SECRET_ENV} to connect with OAuth")
    resolved = await resolve(account)
    authorize, _ = _oauth_urls(plugin, resolved.base_url)
    state = await account.create_nonce({"base_url": resolved.base_url})
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": plugin.url("oauth/callback"),
        "scope": SCOPES,
        "state": state,
    }
    return RedirectResponse(f"{authorize}?{urlencode(query)}", status_code=302)


# a problem at the callback, said on a page to a browser (JSON to an API client), by its status
CALLBACK_TITLES = {
    400: "The CRM sign-in could not be finished",
    409: "That location is connected to another account",
    502: "CRM Connect could not be reached",
}


async def callback_page(plugin: PluginContext, connections: Connections, request: Request) -> Response:
    """The callback; a browser meets a refusal as a page with Try again and Back to Integrations."""
    where: dict[str, str] = {}
    try:
        return await callback(plugin, connections, request, where)
    except ApiError as exc:
        if not wants_html(request):
            raise
        message = exc.message[:1].upper() + exc.message[1:]
        return connection_error_page(
            request, CALLBACK_TITLES.get(exc.status, "The CRM connection was not made"), message,
            integrations_url=where.get("back"), try_again_url=where.get("again"), status=exc.status,
        )  # fmt: skip


async def callback(
    plugin: PluginContext, connections: Connections, request: Request, where: dict[str, str] | None = None
) -> Response:
    """GET ?code&state: exchange the code, store the grant, bind the location it was installed in."""
    taken = await plugin.take_nonce(request.query_params.get("state", ""))
    if taken is None:
        raise ApiError(400, "unknown or expired OAuth state (this sign-in page was already used, or is more "
                            "than 10 minutes old); start the connection again from the CRM Connect card")  # fmt: skip
    account, data = taken
    back, again = plugin.integrations_url(account.account_id), plugin.url(f"accounts/{account.account_id}/oauth/start")
    if where is not None:
        where.update(back=back, again=again)
    code = request.query_params.get("code")
    if not code:
        words = oauth_error_words(request.query_params.get("error", ""))
        raise ApiError(400, f"the CRM returned no authorization code. {words}")
    _, token_url = _oauth_urls(plugin, str(data["base_url"]))
    form = {
        "client_id": os.environ.get(CLIENT_ID_ENV, ""),
        "client_secret": os.environ.get(CLIENT_SECRET_ENV, ""),
        "grant_type": "authorization_code",
        "code": code,
        "user_type": "Location",
        "redirect_uri": plugin.url("oauth/callback"),
    }
    try:
        response = await connections.http.post(token_url, data=form)
    except httpx.HTTPError as exc:
        raise ApiError(502, f"the CRM could not be reached to exchange the authorization code: {exc}") from None
    if 400 <= response.status_code < 500:
        raise ApiError(400, f"the CRM refused the authorization code ({response.status_code}); start again")
    if not response.is_success:
        raise ApiError(502, f"the CRM could not exchange the authorization code now ({response.status_code})")
    grant = _grant(response)
    location_id = grant["location_id"]
    if not location_id:
        raise ApiError(502, "the CRM's token answer names no location; start again")
    conflict = await binding_conflict(account, location_id)  # checked before anything is saved
    if conflict is not None:
        raise ApiError(409, conflict)
    expires_at = account.now() + grant.pop("expires_in")
    await account.put_secret(OAUTH_SECRET, {**grant, "expires_at": expires_at})
    await account.update_settings(location_id=location_id)
    if not await ensure_bound(account, await resolve(account)):
        await account.delete_secret(OAUTH_SECRET)
        raise ApiError(409, await binding_conflict(account, location_id) or "the location was taken meanwhile")
    await account.resume()
    await account.log(f"CRM Connect connected by OAuth to location {location_id}")
    if wants_html(request):
        return RedirectResponse(f"{back}?{urlencode({'account': account.account_id, 'connected': '1'})}", 303)
    return JSONResponse({"connected": True, "location_id": location_id})


def _grant(response: httpx.Response) -> dict[str, Any]:
    """The token answer's fields, or a 502 when the CRM sent something unusable."""
    try:
        body = response.json()
        grant = {
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "expires_in": float(body.get("expires_in", 86_399)),
            "location_id": body.get("locationId") or "",
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ApiError(502, "the CRM's token answer could not be read; start again") from None
    if not all(isinstance(grant[k], str) for k in ("access_token", "refresh_token", "location_id")):
        raise ApiError(502, "the CRM's token answer could not be read; start again")
    return grant
