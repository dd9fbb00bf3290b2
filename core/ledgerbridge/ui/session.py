"""The browser session: a signed cookie (Starlette's SessionMiddleware) holding the sign-in and a CSRF token.

The sign-in is recorded in the store (`ledgerbridge.web.sessions`): signing out or rotating the admin token
ends it on the server, whatever the cookie says. CSRF defence: the cookie is `SameSite=Lax`, and
`ledgerbridge.web.csrf.CsrfGuard` refuses every cookie-authenticated state change that lacks the session's
token or comes from another origin, on every route. Forms carry the token as the hidden `csrf_token` field;
`check_csrf_token` checks it again where a handler wants to.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request

from ledgerbridge.settings import Settings
from ledgerbridge.web.auth import SESSION_KEY, token_matches
from ledgerbridge.web.csrf import CSRF_FIELD as CSRF_FIELD
from ledgerbridge.web.csrf import CSRF_SESSION_KEY, same_origin, tokens_match
from ledgerbridge.web.errors import ApiError
from ledgerbridge.web.redirects import local_path
from ledgerbridge.web.sessions import SESSION_ID_KEY, close_session, open_session

SECRET_FILE_NAME = "session.key"
COOKIE_NAME = "ledgerbridge_session"
CSRF_KEY = CSRF_SESSION_KEY
FLASH_KEY = "flash"
SESSION_SECONDS = 12 * 60 * 60


def load_or_create_session_secret(data_dir: Path) -> str:
    """The key that signs session cookies: made once, kept in `<data_dir>/session.key`, readable by owner only."""
    path = data_dir / SECRET_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # another process made it between our check and our create: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


def session_middleware(settings: Settings) -> Middleware:
    return Middleware(
        SessionMiddleware,
        secret_key=load_or_create_session_secret(settings.data_dir),
        session_cookie=COOKIE_NAME,
        max_age=SESSION_SECONDS,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )


def _session(request: Request) -> dict[str, Any]:
    session: dict[str, Any] = request.session
    return session


def is_signed_in(request: Request) -> bool:
    return _session(request).get(SESSION_KEY) is True


async def sign_in(request: Request, presented_token: str) -> bool:
    """Start a signed-in session when `presented_token` is the admin token; False (and no change) otherwise."""
    if not presented_token or not token_matches(request, presented_token.strip()):
        return False
    session = _session(request)
    await close_session(request, session.get(SESSION_ID_KEY))
    session.clear()  # a fresh session: no value from before sign-in carries over
    session[SESSION_ID_KEY] = await open_session(request, SESSION_SECONDS)
    session[SESSION_KEY] = True
    session[CSRF_KEY] = secrets.token_urlsafe(32)
    return True


async def sign_out(request: Request) -> None:
    """End the session on the server too: a copy of the cookie kept elsewhere is signed out as well."""
    session = _session(request)
    await close_session(request, session.get(SESSION_ID_KEY))
    session.clear()


def csrf_token(request: Request) -> str:
    session = _session(request)
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def check_csrf_token(request: Request, presented: object) -> None:
    """Refuse (403) a form that lacks this session's token or that a browser says came from another origin."""
    if same_origin(request.headers, request.app.state.runtime.settings.base_url) is False:
        raise ApiError(403, "This form was sent from another site, so it was refused.")
    if not tokens_match(_session(request).get(CSRF_KEY), presented):
        raise ApiError(
            403, "This form has expired or did not come from this site. Go back, reload the page and try again."
        )


def flash(request: Request, message: str) -> None:
    """A one-time message for the next page (after a POST redirects)."""
    messages = list(_session(request).get(FLASH_KEY) or [])
    _session(request)[FLASH_KEY] = [*messages[-4:], message]


def take_flashes(request: Request) -> list[str]:
    messages = _session(request).pop(FLASH_KEY, None) or []
    return [str(message) for message in messages]


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go to after sign-in; anything else (another host, `//host`, a scheme) becomes `default`."""
    return local_path(value, default)
