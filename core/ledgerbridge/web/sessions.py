"""Signed-in browser sessions, recorded in the store so that signing out or rotating the admin token ends them.

The cookie (Starlette's signed `SessionMiddleware` cookie) carries a random session id; the store holds a
lease `session:<id>` owned by a fingerprint of the admin token it was opened with. A cookie whose lease is
gone (signed out, expired) or whose fingerprint is not the current token's (rotated) is not signed in, in
every process that shares the store.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("ledgerbridge.web")

SESSION_ID_KEY = "sid"
LOCK_PREFIX = "session:"


def token_fingerprint(admin_token: str) -> str:
    """Names the admin token without revealing it (a keyed hash; the token itself never reaches the store)."""
    return hmac.new(admin_token.encode(), b"ledgerbridge-session", hashlib.sha256).hexdigest()[:32]


def _store(app: Any) -> Any:
    runtime = getattr(app.state, "runtime", None)
    return runtime.store if runtime is not None else None


async def open_session(request: Request, seconds: float) -> str:
    """Record a new signed-in session for the current admin token; its id goes into the cookie."""
    session_id = secrets.token_urlsafe(24)
    owner = token_fingerprint(request.app.state.admin_token)
    now = time.time()
    await _store(request.app).try_lock(LOCK_PREFIX + session_id, owner, seconds, now)
    return session_id


async def close_session(request: Request, session_id: object) -> None:
    if isinstance(session_id, str) and session_id:
        owner = token_fingerprint(request.app.state.admin_token)
        await _store(request.app).unlock(LOCK_PREFIX + session_id, owner)


class SessionGuard:
    """Runs inside `SessionMiddleware`: a signed-in cookie the store no longer vouches for is emptied, so
    everything after it (`is_admin`, the UI, plugin routes) sees a signed-out visitor."""

    def __init__(self, app: ASGIApp, signed_in_key: str) -> None:
        self.app = app
        self.signed_in_key = signed_in_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session") if scope["type"] == "http" else None
        if session and session.get(self.signed_in_key) is True and not await self._valid(scope, session):
            session.clear()
        await self.app(scope, receive, send)

    async def _valid(self, scope: Scope, session: dict[str, Any]) -> bool:
        session_id = session.get(SESSION_ID_KEY)
        app = scope["app"]
        if not isinstance(session_id, str) or not session_id:
            return False
        try:
            holder = await _store(app).lock_holder(LOCK_PREFIX + session_id, time.time())
        except Exception as exc:  # a store that is not open yet or failing: no session is trusted meanwhile
            logger.warning("cannot check a browser session: %s", exc)
            return False
        expected = token_fingerprint(app.state.admin_token)
        return holder is not None and hmac.compare_digest(holder, expected)
