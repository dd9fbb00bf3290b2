"""OAuth 2.0 provider: discovery, a JavaScript-free authorize page, token, revoke, userinfo, JWKS."""

from __future__ import annotations

import base64
import binascii
import hashlib
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import jsonbody
from .engine import Sandbox

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
KNOWN_SCOPES = {ACCOUNTING_SCOPE, "com.intuit.quickbooks.payment", "openid", "profile", "email", "phone", "address"}
AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/v2/oauth2/tokens/revoke"
USERINFO_PATH = "/v1/openid_connect/userinfo"
JWKS_PATH = "/oauth2/v1/certs"


def _sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


async def discovery(request: Request) -> Response:
    base = _sandbox(request).base_url
    return JSONResponse({
        "issuer": base,
        "authorization_endpoint": base + AUTHORIZE_PATH,
        "token_endpoint": base + TOKEN_PATH,
        "userinfo_endpoint": base + USERINFO_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        "jwks_uri": base + JWKS_PATH,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": sorted(KNOWN_SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    })  # fmt: skip


async def jwks(request: Request) -> Response:
    # No id_token is ever issued, so there is no signing key to publish.
    return JSONResponse({"keys": []})


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status)


def _error_page(message: str) -> HTMLResponse:
    return _page("Authorization error", f"<p>{escape(message)}</p>", 400)


def _redirect(redirect_uri: str, params: dict[str, str]) -> RedirectResponse:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(redirect_uri + separator + urlencode(params), 302)


def _validate_client(sandbox: Sandbox, client_id: str, redirect_uri: str) -> str | None:
    """Problems with client or redirect URI get an error page: never redirect to an unverified URI."""
    app = sandbox.apps.get(client_id)
    if app is None:
        return "Unknown client_id."
    if redirect_uri not in app.redirect_uris:
        return "The redirect_uri is not registered for this app."
    return None


async def authorize_page(request: Request) -> Response:
    sandbox = _sandbox(request)
    params = request.query_params
    client_id = params.get("client_id", "")
    redirect_uri = params.get("redirect_uri", "")
    problem = _validate_client(sandbox, client_id, redirect_uri)
    if problem:
        return _error_page(problem)
    state = params.get("state", "")
    back: dict[str, str] = {"state": state} if state else {}
    if params.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", **back})
    scope = params.get("scope", "")
    scopes = set(scope.split())
    if not scopes or not scopes <= KNOWN_SCOPES:
        return _redirect(redirect_uri, {"error": "invalid_scope", **back})
    options = "".join(
        f"<p><label><input type='radio' name='realm_id' value='{escape(c.realm_id)}'{' checked' if i == 0 else ''}>"
        f" {escape(c.name)} ({escape(c.country)}, realm {escape(c.realm_id)})</label></p>"
        for i, c in enumerate(sandbox.companies.values())
    )
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{escape(value)}'>"
        for name, value in (("client_id", client_id), ("redirect_uri", redirect_uri), ("state", state),
                            ("scope", scope))
    )  # fmt: skip
    new_checked = "" if sandbox.companies else " checked"
    form = (
        f"<form method='post' action='{escape(_sandbox(request).base_url + AUTHORIZE_PATH)}'>{hidden}"
        "<h2>Sign in</h2><p><label>E-mail <input type='email' name='email' value='user@example.com'></label></p>"
        "<h2>Choose a company</h2>" + options +
        f"<p><label><input type='radio' name='realm_id' value='new'{new_checked}> A new company:</label> "
        "<input name='company_name' placeholder='Company name'> "
        "<select name='country'><option value='US'>United States</option><option value='GB'>United Kingdom</option>"
        "<option value='CA'>Canada</option><option value='AU'>Australia</option></select></p>"
        f"<h2>Consent</h2><p>{escape(sandbox.apps[client_id].client_id)} asks for: {escape(scope)}</p>"
        "<button name='action' value='allow'>Connect</button> <button name='action' value='deny'>Deny</button>"
        "</form>"
    )  # fmt: skip
    return _page("Connect to QuickBooks (sandbox)", form)


async def authorize_submit(request: Request) -> Response:
    sandbox = _sandbox(request)
    form = await request.form()
    names = ("client_id", "redirect_uri", "state", "scope", "email", "realm_id", "company_name", "country", "action")
    field = {key: str(form.get(key, "")) for key in names}
    problem = _validate_client(sandbox, field["client_id"], field["redirect_uri"])
    if problem:
        return _error_page(problem)
    back = {"state": field["state"]} if field["state"] else {}
    if field["action"] != "allow":
        return _redirect(field["redirect_uri"], {"error": "access_denied", **back})
    if not field["email"].strip():
        return _error_page("Sign in with an e-mail address.")
    if field["realm_id"] == "new":
        company = sandbox.create_company(field["company_name"] or "Sandbox Company", field["country"] or "US")
    else:
        found = sandbox.companies.get(field["realm_id"])
        if found is None:
            return _error_page("Choose a company.")
        company = found
    grant = sandbox.tokens.new_grant(sandbox.clock, field["client_id"], company.realm_id, field["email"].strip(),
                                     field["scope"])  # fmt: skip
    code = sandbox.tokens.new_code(sandbox.clock, grant, field["redirect_uri"])
    sandbox.dirty = True
    return _redirect(field["redirect_uri"], {"code": code, **back, "realmId": company.realm_id})


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status)


def _client(request: Request, sandbox: Sandbox) -> str | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    app = sandbox.apps.get(client_id)
    return client_id if app is not None and app.client_secret == secret else None


async def token(request: Request) -> Response:
    sandbox = _sandbox(request)
    client_id = _client(request, sandbox)
    if client_id is None:
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    form = await request.form()
    grant_type = str(form.get("grant_type", ""))
    if grant_type == "authorization_code":
        grant = sandbox.tokens.exchange_code(sandbox.clock, str(form.get("code", "")), client_id,
                                             str(form.get("redirect_uri", "")))  # fmt: skip
    elif grant_type == "refresh_token":
        grant = sandbox.tokens.use_refresh(sandbox.clock, str(form.get("refresh_token", "")), client_id)
    else:
        return _oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant_type!r}")
    if grant is None:
        return _oauth_error("invalid_grant", "Token invalid")
    sandbox.connect(client_id, grant.realm_id)
    if grant_type == "refresh_token":
        sandbox.throttle.refreshed(grant.realm_id)
    body = sandbox.tokens.issue(sandbox.clock, grant, sandbox.config.access_token_ttl)
    return JSONResponse(body, headers={"cache-control": "no-store"})


async def revoke(request: Request) -> Response:
    sandbox = _sandbox(request)
    client_id = _client(request, sandbox)
    if client_id is None:
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    try:
        payload: Any = jsonbody.loads(await request.body() or b"{}")
    except ValueError:
        return _oauth_error("invalid_request", "The body must be JSON")
    value = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value:
        return _oauth_error("invalid_request", "token is required")
    grant_realm = None
    found = sandbox.tokens.access.get(value) or sandbox.tokens.refresh.get(value)
    if found is not None and found.grant_id in sandbox.tokens.grants:
        grant_realm = sandbox.tokens.grants[found.grant_id].realm_id
    # RFC 7009: an unknown token is not an error; the answer is 200 with no body either way.
    if sandbox.tokens.revoke(value, client_id) and grant_realm is not None:
        still = any(g.client_id == client_id and g.realm_id == grant_realm and not g.revoked
                    for g in sandbox.tokens.grants.values())  # fmt: skip
        if not still:
            sandbox.connections.discard((client_id, grant_realm))
        sandbox.dirty = True
    return Response(b"", 200)


async def userinfo(request: Request) -> Response:
    sandbox = _sandbox(request)
    header = request.headers.get("authorization", "")
    grant, reason = (None, "Token missing")
    if header.lower().startswith("bearer "):
        grant, reason = sandbox.tokens.check_access(sandbox.clock, header[7:].strip())
    if grant is None:
        return _oauth_error("invalid_token", reason, 401)
    local = grant.email.split("@")[0]
    return JSONResponse({
        "sub": hashlib.sha256(grant.email.lower().encode()).hexdigest()[:32],
        "email": grant.email, "emailVerified": True, "givenName": local, "familyName": "Sandbox",
        "realmid": grant.realm_id,
    })  # fmt: skip


routes = [
    Route("/.well-known/openid_configuration", discovery),
    Route("/.well-known/openid_configuration/", discovery),
    Route("/.well-known/openid_sandbox_configuration", discovery),
    Route("/.well-known/openid_sandbox_configuration/", discovery),
    Route(JWKS_PATH, jwks),
    Route(AUTHORIZE_PATH, authorize_page, methods=["GET"]),
    Route(AUTHORIZE_PATH, authorize_submit, methods=["POST"]),
    Route(TOKEN_PATH, token, methods=["POST"]),
    Route(REVOKE_PATH, revoke, methods=["POST"]),
    Route(USERINFO_PATH, userinfo, methods=["GET"]),
]
