"""The admin credential: a bearer token (API) that the web UI also accepts as a signed-in session.

The token is at least `MIN_TOKEN_LENGTH` characters, lives in `<data_dir>/admin-token` (owner-only) unless the
operator sets one, and wrong guesses are throttled per client (`ledgerbridge.web.throttle`).
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request

from ledgerbridge.settings import Settings
from ledgerbridge.web.errors import ApiError
from ledgerbridge.web.throttle import AuthThrottle

TOKEN_FILE_NAME = "admin-token"
SESSION_KEY = "admin"
MIN_TOKEN_LENGTH = 16


class WeakAdminToken(ValueError):
    pass


def secure_data_dir(data_dir: Path) -> None:
    """The data directory holds the database, keys and tokens: owner-only (0700)."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)


def admin_token_for(settings: Settings) -> str:
    """The operator's token (refused when shorter than `MIN_TOKEN_LENGTH`) or the one in the data dir."""
    token = settings.admin_token if settings.admin_token is not None else load_or_create_admin_token(settings.data_dir)
    token = token.strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise WeakAdminToken(
            f"the admin token must be at least {MIN_TOKEN_LENGTH} characters (it has {len(token)}); "
            f"unset LEDGERBRIDGE_ADMIN_TOKEN to have a strong one generated into the data directory"
        )
    return token


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE_NAME


def load_or_create_admin_token(data_dir: Path) -> str:
    path = data_dir / TOKEN_FILE_NAME
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return token


def _throttle(request: Request) -> AuthThrottle:
    state = request.app.state
    if not hasattr(state, "auth_throttle"):
        state.auth_throttle = AuthThrottle()
    throttle: AuthThrottle = state.auth_throttle
    return throttle


def token_matches(request: Request, presented: str) -> bool:
    """Compare in constant time; a client with too many recent failures gets a 429 before any comparison."""
    client = request.client.host if request.client else "unknown"
    throttle = _throttle(request)
    wait = throttle.retry_after(client)
    if wait is not None:
        raise ApiError(
            429,
            f"too many wrong admin tokens from this address; try again in {wait:.0f} s",
            headers={"Retry-After": str(int(wait + 0.999))},
        )
    expected: str = request.app.state.admin_token
    if hmac.compare_digest(presented.encode(), expected.encode()):
        return True
    throttle.failed(client)
    return False


def is_admin(request: Request) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token_matches(request, token.strip())
    session = request.scope.get("session")
    return bool(session and session.get(SESSION_KEY) is True)


def require_admin(request: Request) -> None:
    if not is_admin(request):
        raise ApiError(
            401,
            "admin credential required: send 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
