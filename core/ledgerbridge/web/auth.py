"""The admin credential: a bearer token (API) that the web UI also accepts as a signed-in session."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from starlette.requests import Request

from ledgerbridge.web.errors import ApiError

TOKEN_FILE_NAME = "admin-token"
SESSION_KEY = "admin"


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


def token_matches(request: Request, presented: str) -> bool:
    expected: str = request.app.state.admin_token
    return hmac.compare_digest(presented.encode(), expected.encode())


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
