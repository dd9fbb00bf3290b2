"""Marketplace OAuth: a minimal location chooser that issues codes, and POST /oauth/token with rotation."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ledgerbridge_crmconnect.sandbox.engine import SandboxEngine
from ledgerbridge_crmconnect.sandbox.state import Record
from ledgerbridge_crmconnect.sandbox.templating import render
from ledgerbridge_crmconnect.sandbox.util import ApiError, JSONResponse, ghl_id

CODE_SECONDS = 600
REFRESH_SECONDS = 365 * 86400
DEFAULT_SCOPE = (
    "contacts.readonly contacts.write invoices.readonly invoices.write payments/orders.readonly "
    "payments/transactions.readonly payments/subscriptions.readonly products.readonly "
    "conversations/message.write"
)


def _app(engine: SandboxEngine, client_id: str | None, redirect_uri: str | None) -> None:
    app = engine.oauth_apps.get(client_id or "")
    if app is None:
        raise ApiError(400, "Invalid client_id")
    if redirect_uri and app.redirect_uris and redirect_uri not in app.redirect_uris:
        raise ApiError(400, "redirect_uri is not registered for this app")


def issue_code(engine: SandboxEngine, client_id: str, redirect_uri: str, location_id: str, scope: str) -> str:
    engine.location(location_id)
    code = secrets.token_hex(20)
    engine.state.auth_codes[code] = {
        "clientId": client_id,
        "redirectUri": redirect_uri,
        "locationId": location_id,
        "scope": scope or DEFAULT_SCOPE,
        "expiresAt": time.time() + CODE_SECONDS,
    }
    return code


def _issue_tokens(engine: SandboxEngine, grant: Record, user_type: str) -> Record:
    location = engine.location(grant["locationId"])
    access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    token: Record = {
        "clientId": grant["clientId"],
        "userType": user_type,
        "scope": grant["scope"],
        "companyId": location["companyId"],
        "userId": grant.get("userId") or ghl_id(),
        "locationId": grant["locationId"] if user_type == "Location" else None,
    }
    engine.state.access_tokens[access] = {**token, "expiresAt": time.time() + engine.config.access_token_seconds}
    engine.state.refresh_tokens[refresh] = {
        **token,
        "locationId": grant["locationId"],
        "expiresAt": time.time() + REFRESH_SECONDS,
    }
    out: Record = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": engine.config.access_token_seconds,
        "refresh_token": refresh,
        "scope": grant["scope"],
        "userType": user_type,
        "companyId": location["companyId"],
        "userId": token["userId"],
        "isBulkInstallation": False,
    }
    if user_type == "Location":
        out["locationId"] = grant["locationId"]
    return out


async def chooser(request: Request) -> Response:
    """GET: list the locations to install into; POST: redirect back with a code (what a user's click does)."""
    engine: SandboxEngine = request.app.state.sandbox
    params = dict(request.query_params)
    if request.method == "POST":
        params.update({k: str(v) for k, v in (await request.form()).items()})
    try:
        _app(engine, params.get("client_id"), params.get("redirect_uri"))
        if params.get("response_type", "code") != "code":
            raise ApiError(400, "response_type must be code")
    except ApiError as error:
        return error.response()
    redirect_uri = params.get("redirect_uri") or (engine.oauth_apps[params["client_id"]].redirect_uris or [""])[0]
    if request.method == "POST":
        try:
            code = issue_code(
                engine, params["client_id"], redirect_uri, params.get("location_id", ""), params.get("scope", "")
            )
        except ApiError as error:
            return error.response()
        engine.save()
        query = {"code": code, **({"state": params["state"]} if params.get("state") else {})}
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(query)}", status_code=302)
    hidden = {k: v for k, v in params.items() if k in ("client_id", "redirect_uri", "scope", "state", "response_type")}
    page = render(
        "chooser.html",
        title="Choose a sub-account",
        base=str(request.scope.get("root_path", "")).rstrip("/"),
        location=None,
        client_id=params["client_id"],
        hidden=hidden,
        locations=list(engine.state.locations.values()),
    )
    return HTMLResponse(page)


async def token(request: Request) -> Response:
    engine: SandboxEngine = request.app.state.sandbox
    form = {k: str(v) for k, v in (await request.form()).items()}
    try:
        missing = [f"{k} should not be empty" for k in ("client_id", "client_secret", "grant_type") if not form.get(k)]
        if missing:
            raise ApiError(422, missing)
        app = engine.oauth_apps.get(form["client_id"])
        if app is None or not secrets.compare_digest(app.client_secret, form["client_secret"]):
            raise ApiError(401, "Invalid client credentials")
        user_type = form.get("user_type") or "Location"
        if user_type not in ("Location", "Company"):
            raise ApiError(422, ["user_type must be one of the following values: Company, Location"])
        with engine.lock:
            if form["grant_type"] == "authorization_code":
                grant = engine.state.auth_codes.pop(form.get("code", ""), None)  # single use
                if grant is None or grant["expiresAt"] < time.time() or grant["clientId"] != app.client_id:
                    raise ApiError(400, "Invalid grant: authorization code is invalid")
                if form.get("redirect_uri") and form["redirect_uri"] != grant["redirectUri"]:
                    raise ApiError(400, "Invalid grant: redirect_uri does not match")
            elif form["grant_type"] == "refresh_token":
                grant = engine.state.refresh_tokens.pop(form.get("refresh_token", ""), None)  # rotation
                if grant is None or grant["expiresAt"] < time.time() or grant["clientId"] != app.client_id:
                    raise ApiError(400, "Invalid grant: refresh token is invalid")
            else:
                raise ApiError(
                    422, ["grant_type must be one of the following values: authorization_code, refresh_token"]
                )
            body = _issue_tokens(engine, grant, user_type)
        engine.save()
        return JSONResponse(body)
    except ApiError as error:
        return error.response()


def expire_access_tokens(engine: SandboxEngine) -> int:
    """Control helper: make every access token stale so clients exercise their refresh path."""
    for record in engine.state.access_tokens.values():
        record["expiresAt"] = 0
    return len(engine.state.access_tokens)


routes = [
    Route("/oauth/chooselocation", chooser, methods=["GET", "POST"]),
    Route("/oauth/token", token, methods=["POST"]),
]


def authorize_url(engine: SandboxEngine, client_id: str, redirect_uri: str, scope: str = DEFAULT_SCOPE) -> str:
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope})
    return f"{engine.base_url}/oauth/chooselocation?{query}"
