"""The connect flow: Connect to Xero (admin) → Xero's consent page (PKCE) → callback → tokens stored, tenant
bound, contact import started; disconnect removes the connection in Xero and revokes the tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ledgerbridge import AccountContext, ExternalIdTaken, PluginContext
from ledgerbridge.web import admin_submission, already_connected_page, connection_error_page
from ledgerbridge.web.auth import is_admin
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from . import contacts_import, errors, identity
from .tokens import SECRET, Connection, load_connection, save_connection

if TYPE_CHECKING:
    from .plugin import XeroPlugin

CALLBACK_PATH = "callback"
UI_PATHS = ("/accounts/{account_id}/settings/integrations", "/settings/integrations")


async def _admin_account(plugin_context: PluginContext, request: Request) -> AccountContext | Response:
    if not is_admin(request):
        return JSONResponse({"error": "admin credential required"}, 401, headers={"WWW-Authenticate": "Bearer"})
    account_id = request.query_params.get("account", "")
    ctx = await plugin_context.account(account_id) if account_id else None
    if ctx is None:
        return connection_error_page(
            request, "No such account", f"There is no account {account_id[:100]!r} to connect Xero to.", status=404
        )
    return ctx


def connect_route(plugin_context: PluginContext, plugin: XeroPlugin) -> Any:
    async def connect(request: Request) -> Response:
        found = await _admin_account(plugin_context, request)
        if isinstance(found, Response):
            return found
        credentials = plugin.credentials
        if credentials is None:
            return connection_error_page(
                request, "Xero is not set up on this server",
                "Xero is not configured (LEDGERBRIDGE_XERO_CLIENT_ID/SECRET) and no sandbox runs.",
                integrations_url=plugin_context.integrations_url(found.account_id), status=503,
            )  # fmt: skip
        return_to = request.query_params.get("return_to", "")
        verifier, challenge = identity.pkce_pair()
        state = await found.create_nonce(
            {"return_to": return_to if return_to.startswith("/") else "", "verifier": verifier}
        )
        return RedirectResponse(identity.authorize_url(credentials, plugin.redirect_uri, state, challenge), 302)

    return connect


def callback_route(plugin_context: PluginContext, plugin: XeroPlugin) -> Any:
    async def callback(request: Request) -> Response:
        params = request.query_params
        taken = await plugin_context.take_nonce(params.get("state", ""))
        if taken is None:
            return connection_error_page(
                request, "This sign-in link has expired",
                "This page was already used, or it is more than 10 minutes old. Start again with Connect to Xero "
                "on the Xero card.",
            )  # fmt: skip
        ctx, data = taken
        back = plugin_context.integrations_url(ctx.account_id)
        again = plugin_context.url(f"connect?account={ctx.account_id}")
        if params.get("error"):
            await ctx.log(f"Xero connection not made: {params['error']}", level="warning")
            return _back(request, ctx, data, {"error": params["error"]})
        code = params.get("code", "")
        if not code:
            return connection_error_page(
                request, "Xero did not finish the sign-in", "Xero sent you back without the connection's code.",
                integrations_url=back, try_again_url=again,
            )  # fmt: skip
        try:
            tokens = await plugin.identity.exchange(code, plugin.redirect_uri, str(data.get("verifier", "")))
            tenants = await plugin.identity.tenants(tokens.access_token, identity.auth_event_id(tokens.access_token))
        except errors.XeroError as exc:
            await ctx.log(f"Xero code exchange failed: {exc}", level="error", **exc.details)
            return connection_error_page(
                request, "Xero did not accept the sign-in",
                "Xero refused to finish the connection (the sign-in may have expired). Try again; the details are "
                "in Activity.",
                integrations_url=back, try_again_url=again, status=502,
            )  # fmt: skip
        if not tenants:
            return _back(request, ctx, data, {"error": "no organisation was chosen"})
        tenant = tenants[0]
        bound = await plugin_context.account_for_external_id(tenant.tenant_id.lower())
        if bound is not None and bound.account_id != ctx.account_id:
            return _taken_page(request, tenant.tenant_name, bound.account.name, back, again)
        now = ctx.now()
        connection = Connection(
            tenant_id=tenant.tenant_id.lower(),
            tenant_name=tenant.tenant_name,
            connection_id=tenant.id,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            access_expires_at=now + tokens.expires_in,
            connected_at=now,
        )
        try:
            await connect_account(ctx, plugin, connection)
        except ExternalIdTaken:
            return _taken_page(request, tenant.tenant_name, None, back, again)
        return _back(
            request,
            ctx,
            data,
            {"connected": "1", "tenant_id": connection.tenant_id, "organisation": connection.tenant_name or ""},
        )

    return callback


def _taken_page(request: Request, organisation: str | None, holder: str | None, back: str, again: str) -> Response:
    return already_connected_page(request, "organisation", f"Xero organisation {organisation or ''}".strip(), holder,
                                  integrations_url=back, try_again_url=again)  # fmt: skip


async def connect_account(ctx: AccountContext, plugin: XeroPlugin, connection: Connection) -> None:
    """Bind the tenant, store the tokens, record the sync start, resume deliveries, import contacts.

    Raises `ExternalIdTaken` (nothing stored) when another account bound the tenant meanwhile.
    """
    await ctx.bind_external_id(connection.tenant_id)  # first: a tenant another account holds gets no tokens here
    first_key = f"connected_at:{connection.tenant_id}"
    first = await ctx.get_cursor(first_key)
    if first is None:
        await ctx.set_cursor(first_key, repr(connection.connected_at))
    else:
        connection.connected_at = float(first)  # reconnecting keeps the original sync start
    previous = await load_connection(ctx)
    async with plugin.tokens.lock(ctx.account_id):
        await save_connection(ctx, connection)
        plugin.tokens.remember(ctx.account_id, connection)
    plugin.forget_setup(connection.tenant_id)
    await ctx.record_connection()  # the core's sync start: documents created before it are not synced
    await ctx.log(f"connected to Xero organisation {connection.tenant_name} ({connection.tenant_id})")
    await ctx.resume()
    if previous is None or previous.tenant_id != connection.tenant_id:
        await contacts_import.restart(ctx)
    plugin.start_task(_import_now(ctx, plugin))


async def _import_now(ctx: AccountContext, plugin: XeroPlugin) -> None:
    try:
        await contacts_import.run(ctx, plugin)
    except Exception as exc:  # the background task retries on its next tick
        await ctx.log(f"Xero contact import interrupted: {exc}", level="warning", **getattr(exc, "details", {}))


def _back(request: Request, ctx: AccountContext, data: dict[str, Any], result: dict[str, str]) -> Response:
    target = str(data.get("return_to") or "") or _ui_page(request, ctx.account_id)
    if target:
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}{urlencode({'account': ctx.account_id, **result})}", 303)
    return JSONResponse({"account": ctx.account_id, "plugin": "xero", **result}, 400 if "error" in result else 200)


def _ui_page(request: Request, account_id: str) -> str:
    paths = {getattr(route, "path", "") for route in getattr(request.app, "routes", [])}
    for path in UI_PATHS:
        if path in paths:
            return path.replace("{account_id}", account_id)
    return ""


def disconnect_route(plugin_context: PluginContext, plugin: XeroPlugin) -> Any:
    async def disconnect(request: Request) -> Response:
        found = await _admin_account(plugin_context, request)
        if isinstance(found, Response):
            return found
        await admin_submission(request)  # a browser's form must carry the session's CSRF token
        connection = await load_connection(found)
        if connection is not None:
            try:
                token = await plugin.tokens.access_token(found)
                await plugin.identity.disconnect(token, connection.connection_id)
                await plugin.identity.revoke(connection.refresh_token)
            except errors.XeroError as exc:
                await found.log(f"Xero disconnection was not confirmed: {exc}", level="warning", **exc.details)
            await found.delete_secret(SECRET)
            await found.bind_external_id(None)
            plugin.tokens.forget(found.account_id)
            await found.log(f"disconnected from Xero organisation {connection.tenant_name}")
        page = _ui_page(request, found.account_id)
        if "application/json" in request.headers.get("accept", "") or not page:
            return JSONResponse({"account": found.account_id, "disconnected": True})
        return RedirectResponse(page, 303)

    return disconnect
