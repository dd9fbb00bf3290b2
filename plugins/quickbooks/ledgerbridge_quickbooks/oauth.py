"""The connect flow: QB Connect (admin) → Intuit's consent page → callback → tokens stored, realm bound.

intuit-oauth's AuthClient is blocking, so every call to it runs in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

from ledgerbridge import AccountContext, ExternalIdTaken, PluginContext
from ledgerbridge.web import admin_submission, already_connected_page, connection_error_page, local_path
from ledgerbridge.web.auth import is_admin
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from . import contacts_import, errors
from .service import Service
from .tokens import Connection, connection_from, load_connection, save_connection

logger = logging.getLogger("ledgerbridge.plugins.quickbooks.oauth")
UI_PATHS = ("/accounts/{account_id}/settings/integrations", "/settings/integrations")


async def _admin_account(plugin: PluginContext, request: Request) -> AccountContext | Response:
    if not is_admin(request):
        return JSONResponse({"error": "admin credential required"}, 401, headers={"WWW-Authenticate": "Bearer"})
    account_id = request.query_params.get("account", "")
    ctx = await plugin.account(account_id) if account_id else None
    if ctx is None:
        return connection_error_page(
            request,
            "No such account",
            f"There is no account {account_id[:100]!r} to connect QuickBooks to.",
            status=404,
        )
    return ctx


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status)


def connect_route(plugin: PluginContext, service: Service) -> Any:
    async def connect(request: Request) -> Response:
        found = await _admin_account(plugin, request)
        if isinstance(found, Response):
            return found
        back = plugin.integrations_url(found.account_id)
        if service.credentials is None:
            return connection_error_page(
                request, "QuickBooks is not set up on this server",
                "QuickBooks is not configured (LEDGERBRIDGE_QBO_CLIENT_ID/SECRET) and no sandbox runs.",
                integrations_url=back, status=503,
            )  # fmt: skip
        return_to = request.query_params.get("return_to", "")
        state = await found.create_nonce({"return_to": local_path(return_to, "")})  # never off-site
        try:
            url = await asyncio.to_thread(service.oauth.authorize_url, state)
        except errors.QuickBooksError as exc:
            return connection_error_page(
                request, "Intuit's sign-in cannot be reached",
                f"Intuit's sign-in is unavailable right now ({exc}). Try again in a minute.",
                integrations_url=back, try_again_url=str(request.url), status=502,
            )  # fmt: skip
        return RedirectResponse(url, 302)

    return connect


def callback_route(plugin: PluginContext, service: Service) -> Any:
    async def callback(request: Request) -> Response:
        params = request.query_params
        taken = await plugin.take_nonce(params.get("state", ""))
        if taken is None:
            return connection_error_page(
                request, "This sign-in link has expired",
                "This page was already used, or it is more than 10 minutes old. Start again with QB Connect on "
                "the QuickBooks card.",
            )  # fmt: skip
        ctx, data = taken
        back, again = plugin.integrations_url(ctx.account_id), plugin.url(f"connect?account={ctx.account_id}")
        if params.get("error"):
            await ctx.log(f"QuickBooks connection not made: {params['error']}", level="warning")
            return _back(request, ctx, data, {"error": params["error"]})
        code, realm_id = params.get("code", ""), params.get("realmId", "")
        if not code or not realm_id:
            return connection_error_page(
                request, "QuickBooks did not finish the sign-in",
                "Intuit sent you back without saying which company to connect.",
                integrations_url=back, try_again_url=again,
            )  # fmt: skip
        bound = await plugin.account_for_external_id(realm_id)
        if bound is not None and bound.account_id != ctx.account_id:
            return await _taken_page(request, plugin, realm_id, back, again)
        try:
            tokens = await asyncio.to_thread(service.oauth.exchange, code, realm_id)
        except errors.QuickBooksError as exc:
            await ctx.log(f"QuickBooks code exchange failed: {exc}", level="error", **exc.details)
            if exc.status is not None and 400 <= exc.status < 500:
                # Intuit said no to what the browser brought (a wrong, used or expired code): the request's fault
                return connection_error_page(
                    request, "QuickBooks did not accept the sign-in",
                    "Intuit refused to finish the connection: the sign-in expired or was already used, so "
                    "start again with QB Connect (the details are in Activity).",
                    integrations_url=back, try_again_url=again, status=400,
                )  # fmt: skip
            return connection_error_page(
                request, "QuickBooks could not be reached",
                "QuickBooks could not be reached to finish the connection. Try again in a minute.",
                integrations_url=back, try_again_url=again, status=502,
            )  # fmt: skip
        try:
            connection = await connect_account(ctx, service, connection_from(tokens, realm_id, ctx.now(), ctx.now()))
        except ExternalIdTaken:
            return await _taken_page(request, plugin, realm_id, back, again)
        return _back(request, ctx, data, {"connected": "1", "realm_id": connection.realm_id,
                                          "company": connection.company_name or ""})  # fmt: skip

    return callback


async def _taken_page(request: Request, plugin: PluginContext, realm_id: str, back: str, again: str) -> Response:
    bound = await plugin.account_for_external_id(realm_id)
    return already_connected_page(request, "company", f"QuickBooks company {realm_id}",
                                  bound.account.name if bound is not None else None,
                                  integrations_url=back, try_again_url=again)  # fmt: skip


async def connect_account(ctx: AccountContext, service: Service, connection: Connection) -> Connection:
    """Bind the realm, store the tokens, read the company, resume deliveries and start the contact import.

    Raises `ExternalIdTaken` (nothing stored) when another account bound the realm meanwhile.
    """
    await ctx.bind_external_id(connection.realm_id)  # first: a realm another account holds gets no tokens here
    # the core keeps the first connection as the sync start: reconnecting keeps it, so nothing in between is lost
    connection.connected_at = await ctx.record_connection(connection.connected_at)
    previous = await load_connection(ctx)
    if previous is not None and previous.realm_id != connection.realm_id:
        await ctx.set_cursor(contacts_import.IMPORT_CURSOR, None)
        await ctx.set_cursor(contacts_import.WATERMARK_CURSOR, None)
    async with service.tokens.lock(ctx.account_id):  # never between a refresh and its outcome
        await save_connection(ctx, connection)
        service.tokens.remember(ctx.account_id, connection)
    service.forget_company(connection.realm_id)
    try:
        client = await service.client(ctx)
        setup = await service.company(client)
        connection.company_name, connection.country = setup.name, setup.country
        await save_connection(ctx, connection)
    except errors.QuickBooksError as exc:
        await ctx.log(f"could not read the QuickBooks company: {exc}", level="warning", **exc.details)
    await ctx.log(
        f"connected to QuickBooks company {connection.company_name or ''} ({connection.realm_id})".replace("  ", " ")
    )
    await ctx.resume()
    await contacts_import.restart_import(ctx)
    service.start_task(_import_now(ctx, service))
    return connection


async def _import_now(ctx: AccountContext, service: Service) -> None:
    try:
        await contacts_import.run(ctx, service)
    except Exception as exc:  # the background task retries on its next tick
        await ctx.log(f"contact import interrupted: {exc}", level="warning", **getattr(exc, "details", {}))


def _back(request: Request, ctx: AccountContext, data: dict[str, Any], result: dict[str, str]) -> Response:
    target = local_path(str(data.get("return_to") or ""), "") or _ui_page(request, ctx.account_id)
    if target:
        separator = "&" if "?" in target else "?"
        return RedirectResponse(f"{target}{separator}{urlencode({'account': ctx.account_id, **result})}", 303)
    status = 400 if "error" in result else 200
    return JSONResponse({"account": ctx.account_id, "plugin": "quickbooks", **result}, status)


def _ui_page(request: Request, account_id: str) -> str:
    """The integrations page of the web UI when the server has one, else ""."""
    paths = {getattr(route, "path", "") for route in getattr(request.app, "routes", [])}
    for path in UI_PATHS:
        if path in paths:
            return path.replace("{account_id}", account_id)
    return ""


def disconnect_route(plugin: PluginContext, service: Service) -> Any:
    async def disconnect(request: Request) -> Response:
        found = await _admin_account(plugin, request)
        if isinstance(found, Response):
            return found
        fields = await admin_submission(request)  # a browser's form must carry the session's CSRF token
        fields.pop("account", None)  # the card's form names the account, as the URL does
        if fields:
            names = ", ".join(sorted(map(str, fields)))[:200]
            return _error(422, f"disconnecting takes no fields, not {names}")
        connection = await load_connection(found)
        if connection is not None:
            try:
                await asyncio.to_thread(service.oauth.revoke, connection.refresh_token)
            except errors.QuickBooksError as exc:
                await found.log(f"QuickBooks token revocation failed: {exc}", level="warning", **exc.details)
            await found.delete_secret("connection")
            await found.bind_external_id(None)
            service.tokens.forget(found.account_id)
            await found.log(f"disconnected from QuickBooks company {connection.realm_id}")
        page = _ui_page(request, found.account_id)
        if "application/json" in request.headers.get("accept", "") or not page:
            return JSONResponse({"account": found.account_id, "disconnected": True})
        return RedirectResponse(page, 303)

    return disconnect
