"""The review-request switch and its form, shown on the card of the account's books (accounting plugin).

The feature is the core's (`ledgerbridge.reviews`); the switch refuses to go on while the form says something
is missing, so the feature is never on in a state that would fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.reviews import ReviewSettings
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account
from ledgerbridge.ui.accounts import account_from_path, integrations_url
from ledgerbridge.ui.endpoint import form_bool, form_text, redirect
from ledgerbridge.ui.render import runtime_of
from ledgerbridge.ui.session import flash
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

PLUGIN = "reviews"
ANCHOR = "review-requests"


@dataclass(frozen=True)
class ReviewView:
    settings: ReviewSettings
    default_link: str | None
    problems: tuple[str, ...]


async def review_view(runtime: Runtime, account: Account) -> ReviewView | None:
    if not runtime.plugins.has(PLUGIN):
        return None
    ctx = await runtime.account_context(account.id, PLUGIN)
    if ctx is None:
        return None
    settings: ReviewSettings = await ctx.settings()
    default_link = await runtime.default_review_link(account.id)
    ready = msgspec.structs.replace(settings, enabled=True)
    problems = tuple(await operations.review_problems(runtime, account, ready, default_link))
    return ReviewView(settings=settings, default_link=default_link, problems=problems)


def _back(account: Account) -> Response:
    return redirect(f"{integrations_url(account.id)}#{ANCHOR}")


async def enabled_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    value = form_bool(form, "value")
    try:
        await operations.update_settings(runtime, account, PLUGIN, {"enabled": value})
    except ApiError as exc:
        if exc.status != 422:
            raise
        flash(request, exc.message)
        return _back(account)
    await runtime.store.log_activity(
        account.id, PLUGIN, "info", f"review requests turned {'on' if value else 'off'}", {}, runtime.clock()
    )
    flash(request, f"Review requests are {'on' if value else 'off'} for {account.name}.")
    return _back(account)


async def settings_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    channel = form_text(form, "channel", max_length=10)
    if channel not in ("email", "sms"):
        raise ApiError(422, "choose how the request is sent: e-mail or SMS")
    changes = {
        "channel": channel,
        "review_link": form_text(form, "review_link", max_length=500),
        "subject": form_text(form, "subject", max_length=200),
        "message": form_text(form, "message", max_length=1000),
    }
    try:
        await operations.update_settings(runtime, account, PLUGIN, changes)
    except ApiError as exc:
        if exc.status != 422:
            raise
        flash(request, f"Not saved. {exc.message}")
        return _back(account)
    await runtime.store.log_activity(account.id, PLUGIN, "info", "review-request form saved", {}, runtime.clock())
    flash(request, "Review-request settings saved.")
    return _back(account)
