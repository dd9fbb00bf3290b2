"""Rendering pages: one Jinja2 environment (autoescape on), the common page context and security headers."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ledgerbridge.runtime import Runtime
from ledgerbridge.ui.sandboxes import sandbox_links
from ledgerbridge.ui.session import CSRF_FIELD, csrf_token, is_signed_in, take_flashes

SECURITY_HEADERS = {
    # no inline script or style anywhere, so the policy can be tight; form targets stay open because a
    # card's POST action may redirect to the vendor's sign-in
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def format_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def relative_time(timestamp: float | None, now: float | None = None) -> str:
    """The one way the UI says when: "just now", "2 min ago", "3 h ago", "yesterday", "4 days ago", then a date."""
    if timestamp is None:
        return "never"
    seconds = (time.time() if now is None else now) - timestamp
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 2 * 86400:
        return "yesterday"
    if seconds < 30 * 86400:
        return f"{int(seconds // 86400)} days ago"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def iso_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def plain_value(value: Any) -> str:
    """A value from an activity entry's data as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("ledgerbridge.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = format_time
    env.filters["isotime"] = iso_time
    env.filters["ago"] = relative_time
    env.filters["plain"] = plain_value
    env.globals["csrf_field"] = CSRF_FIELD
    return env


ENVIRONMENT = _environment()


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def render_fragment(template: str, **context: Any) -> str:
    return ENVIRONMENT.get_template(template).render(**context)


def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    runtime = runtime_of(request)
    signed_in = is_signed_in(request)
    base: dict[str, Any] = {
        "request": request,
        "signed_in": signed_in,
        "csrf_token": csrf_token(request),
        "flashes": take_flashes(request),
        "sandboxes": sandbox_links(runtime.sandbox_urls, runtime.sandbox_specs) if signed_in else [],
        "account": None,
        "section": None,
    }
    base.update(context)
    html = ENVIRONMENT.get_template(template).render(**base)
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message: str, **context: Any) -> Response:
    titles = {
        400: "That request could not be read",
        401: "Sign-in needed",
        403: "Not allowed",
        404: "Not found",
        409: "Nothing to do",
        413: "Too much data",
        422: "That was not accepted",
    }
    title = titles.get(status, "Something went wrong")
    return page(request, "error.html", status, title=title, message=message, code=status, **context)
