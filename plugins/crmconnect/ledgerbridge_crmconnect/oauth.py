"""Connecting an account: a Private Integration Token, or HighLevel's OAuth authorization-code flow.

The admin-only routes use the server's admin credential; the OAuth callback is authenticated by the
one-time `state` nonce made when the flow started.
"""

from __future__ import annotations

import os
from html import escape
from urllib.parse import urlencode

from ledgerbridge import AccountContext, PluginContext
from ledgerbridge.web import (
    ApiError,
    admin_submission,
    connection_error_page,
    is_form,
    oauth_error_words,
    require_admin,
)
from ledgerbridge.web.pages import wants_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from ledgerbridge_crmconnect.connection import (
    CLIENT_ID_ENV,
    CLIENT_SECRET_ENV,
    OAUTH_SECRET,
    TOKEN_SECRET,
    Connections,
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


async def connect(plugin: PluginContext, request: Request) -> Response:
    """POST {location_id, token?} (JSON, or the connect page's form): connect with a Private Integration Token."""
    account = await _account(plugin, request)
    body = await admin_submission(request)
    location_id, token = body.get("location_id") or None, body.get("token") or None
    if location_id is not None and (not isinstance(location_id, str) or not location_id):
        raise ApiError(422, "location_id must be a non-empty string")
    if token is not None and (not isinstance(token, str) or not token.strip()):
        raise ApiError(422, "token must be a non-empty string")
    if token is not None:
        await account.put_secret(TOKEN_SECRET, {"token": token.strip()})
    if location_id is not None:
        await account.update_settings(location_id=location_id)
    resolved = await resolve(account)
    await ensure_bound(account, resolved)
    await account.resume()
    await account.log(f"CRM Connect connected to location {resolved.location_id} ({resolved.auth})")
    if is_form(request):
        return RedirectResponse(plugin.integrations_url(account.account_id), 303)
    return JSONResponse({"location_id": resolved.location_id, "auth": resolved.auth, "api": resolved.base_url})


async def disconnect(plugin: PluginContext, request: Request) -> Response:
    account = await _account(plugin, request)
    await admin_submission(request)  # a browser's form must carry the session's CSRF token
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


async def callback(plugin: PluginContext, connections: Connections, request: Request) -> Response:
    """GET ?code&state: exchange the code, store the grant, bind the location it was installed in."""
    taken = await plugin.take_nonce(request.query_params.get("state", ""))
    if taken is None:
        return connection_error_page(
            request, "This sign-in link has expired",
            "This page was already used, or it is more than 10 minutes old. Start again from the CRM Connect card.",
        )  # fmt: skip
    account, data = taken
    back, again = plugin.integrations_url(account.account_id), plugin.url(f"accounts/{account.account_id}/oauth/start")
    code = request.query_params.get("code")
    if not code:
        words = oauth_error_words(request.query_params.get("error", ""))
        return connection_error_page(
            request, "CRM Connect did not finish the sign-in", f"The connection was not made. {words}",
            integrations_url=back, try_again_url=again,
        )  # fmt: skip
    _, token_url = _oauth_urls(plugin, str(data["base_url"]))
    form = {
        "client_id": os.environ.get(CLIENT_ID_ENV, ""),
        "client_secret": os.environ.get(CLIENT_SECRET_ENV, ""),
        "grant_type": "authorization_code",
        "code": code,
        "user_type": "Location",
        "redirect_uri": plugin.url("oauth/callback"),
    }
    response = await connections.http.post(token_url, data=form)
    if not response.is_success:
        await account.log(f"the CRM refused the authorization code ({response.status_code})", level="error")
        return connection_error_page(
            request, "CRM Connect did not accept the sign-in",
            "The CRM refused to finish the connection (the sign-in may have expired). Try again.",
            integrations_url=back, try_again_url=again, status=502,
        )  # fmt: skip
    body = response.json()
    location_id = str(body.get("locationId") or "")
    await account.put_secret(
        OAUTH_SECRET,
        {
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "expires_at": account.now() + float(body.get("expires_in", 86_399)),
            "location_id": location_id,
        },
    )
    if location_id:
        await account.update_settings(location_id=location_id)
    await ensure_bound(account, await resolve(account))
    await account.resume()
    await account.log(f"CRM Connect connected by OAuth to location {location_id}")
    if wants_html(request):
        return RedirectResponse(f"{back}?{urlencode({'account': account.account_id, 'connected': '1'})}", 303)
    return JSONResponse({"connected": True, "location_id": location_id})
