"""A connection problem as a page in the UI's frame, for plugins' OAuth callbacks and connect routes.

A browser (that asks for HTML) gets the page, with "Try again" and "Back to Integrations"; an API client
gets `{"error": message}` with the same status, as before.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# the standard OAuth 2.0 error codes (RFC 6749 §4.1.2.1, §5.2) in plain words; a code is never shown
OAUTH_ERRORS = {
    "access_denied": "Access was not allowed: Cancel or Deny was chosen on the sign-in page.",
    "invalid_grant": "The sign-in expired or was already used.",
    "invalid_request": "The sign-in page could not read the request.",
    "invalid_scope": "The sign-in page refused the permissions asked for.",
    "unauthorized_client": "This server is not allowed to connect with these credentials.",
    "invalid_client": "This server's app credentials were refused.",
    "server_error": "The sign-in service had a problem.",
    "temporarily_unavailable": "The sign-in service is busy or down for a moment.",
}


def oauth_error_words(code: str) -> str:
    """A sign-in page's error code said plainly (an unknown code: the sign-in did not finish)."""
    return OAUTH_ERRORS.get(code.strip(), "The sign-in did not finish.")


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def connection_error_page(
    request: Request,
    title: str,
    message: str,
    *,
    integrations_url: str | None = None,
    try_again_url: str | None = None,
    status: int = 400,
) -> Response:
    """`title` and `message` in plain words; links to local paths or http(s) URLs only."""
    if not wants_html(request) or getattr(request.app.state, "runtime", None) is None:
        return JSONResponse({"error": message}, status)
    from ledgerbridge.ui.render import page  # the UI imports the web helpers, not the reverse, at import time

    def safe(url: str | None) -> str | None:
        if url and (url.startswith(("https://", "http://")) or (url.startswith("/") and not url.startswith("//"))):
            return url
        return None

    return page(
        request,
        "connection_error.html",
        status,
        title=title,
        message=message,
        integrations_url=safe(integrations_url) or "/",
        try_again_url=safe(try_again_url),
    )


def already_connected_page(
    request: Request, kind: str, name: str, holder: str | None, *, integrations_url: str, try_again_url: str
) -> Response:
    """409: the vendor's `kind` (company, organisation) called `name` already serves another account (`holder`)."""
    account = f"the account “{holder}”" if holder else "another account"
    return connection_error_page(
        request, f"That {kind} is connected to another account",
        f"{name} is already connected to {account}. A {kind} serves one account: disconnect it there first, or "
        "choose another when you try again.",
        integrations_url=integrations_url, try_again_url=try_again_url, status=409,
    )  # fmt: skip
