"""Cross-site request forgery defence for every route that accepts the browser session.

A state-changing request (POST, PUT, PATCH, DELETE) authenticated by the session cookie alone, and not by a
bearer token, must prove it comes from this server's own pages:
- an `Origin` (or, without one, `Sec-Fetch-Site`) naming this server, never another site, port or `null`; and
- the session's CSRF token, as the `csrf_token` form field or an `X-CSRF-Token` header, or else a
  non-simple content type (such as `application/json`, which a foreign page cannot send without a CORS
  preflight this server never grants) together with a matching `Origin`.

`SameSite=Lax` alone is not enough: pages on another port of the same host, or on a sibling subdomain, are
"same-site" and their POSTs carry the cookie. The guard runs before any route, so no route can forget it.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerbridge.web.errors import ApiError, json_error

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SIMPLE_TYPES = (*FORM_TYPES, "text/plain", "")
FOREIGN = "This request was sent from another site, so it was refused."
NO_TOKEN = (
    "This request carries the sign-in cookie but not this session's CSRF token (a csrf_token field or an "
    "X-CSRF-Token header); reload the page and try again, or use the admin bearer token."
)


def same_origin(headers: Any, base_url: str) -> bool | None:
    """True/False when the browser says where the request came from; None when it says nothing."""
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null":
            return False
        parts = urlsplit(origin)
        own = urlsplit(base_url)
        return parts.netloc == headers.get("host", "") or (parts.scheme, parts.netloc) == (own.scheme, own.netloc)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    return None


def tokens_match(expected: object, presented: object) -> bool:
    return (
        isinstance(expected, str)
        and isinstance(presented, str)
        and bool(presented)
        and hmac.compare_digest(presented.encode(), expected.encode())
    )


def media_type(headers: Any) -> str:
    return str(headers.get("content-type", "")).split(";")[0].strip().lower()


class CsrfGuard:
    """Runs inside `SessionMiddleware` (it reads the session) and outside every route."""

    def __init__(self, app: ASGIApp, signed_in_key: str, base_url: str, exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.signed_in_key = signed_in_key
        self.base_url = base_url
        self.exempt = exempt  # path prefixes of apps that never accept the session (the mounted sandboxes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        session = scope.get("session") or {}
        bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
        if bearer or session.get(self.signed_in_key) is not True:
            await self.app(scope, receive, send)  # not authenticated by the cookie: nothing to forge
            return
        origin = same_origin(request.headers, self.base_url)
        if origin is False:
            await self._refuse(scope, receive, send, FOREIGN)
            return
        expected = session.get(CSRF_SESSION_KEY)
        if tokens_match(expected, request.headers.get(CSRF_HEADER)):
            await self.app(scope, receive, send)
            return
        kind = media_type(request.headers)
        if kind not in SIMPLE_TYPES and origin is True:
            await self.app(scope, receive, send)
            return
        if kind not in FORM_TYPES:
            await self._refuse(scope, receive, send, NO_TOKEN)
            return
        try:
            body = await _read_all(receive)
            presented = await _form_token(scope, kind, body)
        except ApiError as exc:
            await json_error(exc.status, exc.message)(scope, receive, send)
            return
        if not tokens_match(expected, presented):
            await self._refuse(scope, receive, send, NO_TOKEN)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, message: str) -> None:
        request = Request(scope)
        if "text/html" in request.headers.get("accept", ""):
            from ledgerbridge.ui.render import error_page

            await error_page(request, 403, message)(scope, receive, send)
            return
        await json_error(403, message)(scope, receive, send)


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "the client went away before sending the whole body")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _form_token(scope: Scope, kind: str, body: bytes) -> object:
    if kind == FORM_TYPES[0]:
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return fields.get(CSRF_FIELD)
    request = Request(scope, _replay(body, _never))
    try:
        async with request.form(max_files=0, max_fields=50) as form:
            return form.get(CSRF_FIELD)
    except Exception as exc:
        raise ApiError(400, f"the form body cannot be read: {exc}") from exc


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _never() -> Message:
    return {"type": "http.disconnect"}
