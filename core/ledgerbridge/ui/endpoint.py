"""Wrappers that make every UI route answer with a page: sign-in redirects, CSRF checks and error pages.

A UI error is always a readable page (or, for the JSON poll endpoint, a JSON message), never a bare 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from ledgerbridge.ui.render import error_page
from ledgerbridge.ui.session import CSRF_FIELD, check_csrf_token
from ledgerbridge.web.auth import is_admin
from ledgerbridge.web.errors import ApiError, json_error

logger = logging.getLogger("ledgerbridge.ui")

PageHandler = Callable[[Request], Awaitable[Response]]
FormHandler = Callable[[Request, FormData], Awaitable[Response]]
MAX_FORM_FIELDS = 50


def redirect(url: str) -> Response:
    # 303: the browser follows a POST's answer with a GET
    return RedirectResponse(url, status_code=303)


def to_sign_in(request: Request) -> Response:
    # after signing in, a GET comes back to where it was; a refused POST is not repeated
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        # a refused POST is not repeated: back to the page its form was on (same origin only), else home
        target = _same_origin_page(request) or "/"
    return redirect("/signin?" + urlencode({"next": target}))


def _same_origin_page(request: Request) -> str | None:
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.scheme != request.url.scheme or referer.netloc != request.url.netloc or not referer.path:
        return None
    if not referer.path.startswith("/") or referer.path.startswith("//") or referer.path == "/signin":
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


async def _guarded(request: Request, call: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await call()
    except ApiError as exc:
        return error_page(request, exc.status, exc.message)
    except HTTPException as exc:
        return error_page(request, exc.status_code, str(exc.detail))
    except Exception:
        logger.exception("the page %s %s failed", request.method, request.url.path)
        return error_page(request, 500, "Something went wrong on the server. The server log has the details.")


def page_route(handler: PageHandler, *, public: bool = False) -> PageHandler:
    """A GET page: signed-in users only unless `public`; errors become pages."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if not public and not is_admin(request):
            return to_sign_in(request)
        return await _guarded(request, lambda: handler(request))

    return endpoint


def form_route(handler: FormHandler, *, public: bool = False) -> PageHandler:
    """A form POST: signed-in users only unless `public`; the CSRF token is checked before the handler runs."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if not public and not is_admin(request):
            return to_sign_in(request)

        async def call() -> Response:
            async with request.form(max_files=0, max_fields=MAX_FORM_FIELDS) as form:
                check_csrf_token(request, form.get(CSRF_FIELD))
                return await handler(request, form)

        return await _guarded(request, call)

    return endpoint


def json_route(handler: PageHandler) -> PageHandler:
    """A JSON endpoint for the page's script: 401 when signed out, errors as `{"error": {...}}`."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        if not is_admin(request):
            return json_error(401, "sign in again to keep this page up to date")
        try:
            return await handler(request)
        except ApiError as exc:
            return json_error(exc.status, exc.message)
        except Exception:
            logger.exception("%s %s failed", request.method, request.url.path)
            return JSONResponse({"error": {"status": 500, "message": "internal error"}}, 500)

    return endpoint


def form_text(form: FormData, name: str, *, max_length: int = 200) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > max_length:
        raise ApiError(422, f"{name} is longer than {max_length} characters")
    return value.strip()


def form_bool(form: FormData, name: str) -> bool:
    value = form_text(form, name)
    if value not in ("true", "false"):
        raise ApiError(422, f"{name} must be true or false")
    return value == "true"
