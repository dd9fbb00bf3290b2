"""Xero's identity service: the consent page (login.xero.com/identity/connect/authorize), the token endpoint
(identity.xero.com/connect/token) with PKCE and rotating refresh tokens, revocation, and /connections."""

from __future__ import annotations

import base64
import secrets
import uuid
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .engine import Sandbox
from .errors import problem
from .identity import CODE_SECONDS, Grant, Session, pkce_matches

AUTHORIZE = "/identity/connect/authorize"
TOKEN = "/connect/token"
REVOKE = "/connect/revocation"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>",
        status,
    )


def _oauth_error(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": error} | ({"error_description": description} if description else {})
    return JSONResponse(body, status)


async def authorize(request: Request) -> Response:
    """GET shows the consent form (choose an organisation, allow); POST is the user's answer."""
    sandbox: Sandbox = request.app.state.sandbox
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        params = dict(await request.form())
    app = sandbox.app(params.get("client_id", ""))
    if app is None:
        return _page("Error: unauthorized_client", "<p>Unknown client or client not enabled</p>", 400)
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris:
        return _page("Error: invalid redirect_uri", "<p>The redirect URI is not registered for this app</p>", 400)
    if params.get("response_type") != "code":
        return _back(redirect_uri, {"error": "unsupported_response_type", "state": params.get("state", "")})
    scope = params.get("scope", "")
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method not in (None, "", "S256", "plain"):
        return _back(redirect_uri, {"error": "invalid_request", "state": params.get("state", "")})
    if request.method == "GET":
        hidden = "".join(
            f"<input type='hidden' name='{escape(k)}' value='{escape(str(v))}'>" for k, v in params.items()
        )
        choices = "".join(
            f"<label><input type='radio' name='tenant_id' value='{o.tenant_id}'{' checked' if i == 0 else ''}>"
            f" {escape(o.name)}</label><br>"
            for i, o in enumerate(sandbox.organisations.values())
        )
        form = (
            f"<p>{escape(app.name)} wants access to your Xero organisation ({escape(scope)}).</p>"
            f"<form method='post' action='{escape(str(request.url.path))}'>{hidden}{choices}"
            "<label>User <input name='user' value='owner@example.com'></label><br>"
            "<button name='action' value='allow'>Allow access</button>"
            "<button name='action' value='deny'>Cancel</button></form>"
        )
        return _page("Xero sandbox: connect", form)
    state = params.get("state", "")
    if params.get("action") != "allow":
        return _back(redirect_uri, {"error": "access_denied", "state": state})
    tenant_id = params.get("tenant_id", "")
    if sandbox.organisation(tenant_id) is None:
        return _page("Error: choose an organisation", "<p>No such organisation</p>", 400)
    user = params.get("user") or "owner@example.com"
    grant = Grant(
        code=secrets.token_urlsafe(32),
        client_id=app.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        user_id=str(uuid.uuid5(uuid.NAMESPACE_URL, user)),
        auth_event_id=str(uuid.uuid4()),
        tenant_ids=[tenant_id],
        challenge=params.get("code_challenge") or None,
        challenge_method=method or None,
        expires_at=sandbox.clock() + CODE_SECONDS,
    )
    sandbox.identity.issue_code(grant)
    return _back(redirect_uri, {"code": grant.code, "scope": scope, "state": state})


def _back(redirect_uri: str, params: dict[str, str]) -> Response:
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", 302)


def _client(request: Request, form: dict[str, Any], sandbox: Sandbox) -> tuple[str, bool] | Response:
    """(client_id, authenticated by secret); a PKCE app may send only client_id in the body."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() == "basic ":
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return _oauth_error("invalid_client", 401)
        app = sandbox.app(client_id)
        if app is None or not secrets.compare_digest(app.client_secret, secret):
            return _oauth_error("invalid_client", 401)
        return client_id, True
    client_id = form.get("client_id", "")
    app = sandbox.app(client_id)
    if app is None:
        return _oauth_error("invalid_client", 401)
    if "client_secret" in form:
        secret = str(form["client_secret"])
        if not secrets.compare_digest(app.client_secret, secret):
            return _oauth_error("invalid_client", 401)
        return client_id, True
    return client_id, False


def _tokens(session: Session) -> dict[str, Any]:
    return {
        "id_token": session.access_token,
        "access_token": session.access_token,
        "expires_in": 1800,
        "token_type": "Bearer",
        "refresh_token": session.refresh_token,
        "scope": session.scope,
    }


async def token(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    sandbox.identity.token_calls += 1
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _oauth_error("invalid_request", description="the body must be application/x-www-form-urlencoded")
    form = {k: str(v) for k, v in (await request.form()).items()}
    found = _client(request, form, sandbox)
    if isinstance(found, Response):
        return found
    client_id, authenticated = found
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        grant = sandbox.identity.take_code(form.get("code", ""))
        if grant is None or grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return _oauth_error("invalid_grant")
        if grant.challenge:
            if not pkce_matches(form.get("code_verifier", ""), grant.challenge, grant.challenge_method):
                return _oauth_error("invalid_grant", description="code_verifier does not match the code_challenge")
        elif not authenticated:
            return _oauth_error("invalid_client", 401)
        return JSONResponse(_tokens(sandbox.identity.start_session(grant)))
    if grant_type == "refresh_token":
        session = sandbox.identity.refresh(client_id, form.get("refresh_token", ""))
        if session is None:
            return _oauth_error("invalid_grant")
        return JSONResponse(_tokens(session))
    return _oauth_error("unsupported_grant_type")


async def revoke(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    form = {k: str(v) for k, v in (await request.form()).items()}
    found = _client(request, form, sandbox)
    if isinstance(found, Response):
        return found
    sandbox.identity.revoke(found[0], form.get("token", ""))
    return Response(status_code=200)


def _session(request: Request) -> Session | None:
    sandbox: Sandbox = request.app.state.sandbox
    header = request.headers.get("authorization", "")
    return sandbox.identity.session_for_access(header[7:]) if header[:7].lower() == "bearer " else None


async def connections(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    session = _session(request)
    if session is None:
        return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
    found = sandbox.identity.connections_of(session)
    event = request.query_params.get("authEventId")
    if event:
        found = [c for c in found if c.auth_event_id == event]
    return JSONResponse([sandbox.identity.describe(c, sandbox.organisations[c.tenant_id].name) for c in found])


async def delete_connection(request: Request) -> Response:
    sandbox: Sandbox = request.app.state.sandbox
    session = _session(request)
    if session is None:
        return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
    connection = sandbox.identity.connections.get(request.path_params["id"])
    if connection is None or connection not in sandbox.identity.connections_of(session):
        return Response(status_code=404)
    del sandbox.identity.connections[connection.id]
    return Response(status_code=204)


routes = [
    Route(AUTHORIZE, authorize, methods=["GET", "POST"]),
    Route(TOKEN, token, methods=["POST"]),
    Route(REVOKE, revoke, methods=["POST"]),
    Route("/connections", connections, methods=["GET"]),
    Route("/Connections", connections, methods=["GET"]),
    Route("/connections/{id}", delete_connection, methods=["DELETE"]),
    Route("/Connections/{id}", delete_connection, methods=["DELETE"]),
]
