"""Signing in with the admin token, and out again."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.ui.endpoint import form_text, redirect
from ledgerbridge.ui.render import page
from ledgerbridge.ui.session import flash, safe_next, sign_in, sign_out
from ledgerbridge.web.auth import is_admin

WRONG_TOKEN = (
    "That is not the admin token. It is in the file admin-token in the server's data directory, "
    "or in the LEDGERBRIDGE_ADMIN_TOKEN setting."
)


async def signin_page(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if is_admin(request):
        return redirect(next_path)
    return page(request, "signin.html", title="Sign in", next_path=next_path, error=None)


async def signin_submit(request: Request, form: FormData) -> Response:
    next_path = safe_next(form_text(form, "next", max_length=2000))
    if await sign_in(request, form_text(form, "token", max_length=500)):
        return redirect(next_path)
    return page(request, "signin.html", 401, title="Sign in", next_path=next_path, error=WRONG_TOKEN)


async def signout_submit(request: Request, form: FormData) -> Response:
    await sign_out(request)
    flash(request, "You are signed out.")
    return redirect("/signin")
