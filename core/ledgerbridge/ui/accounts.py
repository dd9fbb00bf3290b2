"""The account list: choose an account, or create one."""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account
from ledgerbridge.ui.endpoint import form_text, redirect
from ledgerbridge.ui.health import account_health
from ledgerbridge.ui.render import page, runtime_of
from ledgerbridge.ui.session import flash
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

# a second "Create account" with the same name this soon after the first is the same click, repeated
REPEAT_WINDOW_SECONDS = 60.0


def integrations_url(account_id: str) -> str:
    return f"/accounts/{account_id}/settings/integrations"


async def account_from_path(request: Request) -> Account:
    return await operations.get_account(runtime_of(request), request.path_params["account_id"])


async def accounts_page(request: Request) -> Response:
    return await _render_accounts(request)


async def _render_accounts(
    request: Request, status: int = 200, error: str | None = None, name: str = "", account_id: str = ""
) -> Response:
    runtime = runtime_of(request)
    accounts = sorted(await runtime.store.list_accounts(), key=lambda a: a.name.lower())
    return page(
        request,
        "accounts.html",
        status,
        title="Accounts",
        section="accounts",
        accounts=[await account_health(runtime, account) for account in accounts],
        error=error,
        form_name=name,
        form_id=account_id,
    )


async def create_account_submit(request: Request, form: FormData) -> Response:
    name = form_text(form, "name")
    account_id = form_text(form, "id", max_length=64)
    runtime = runtime_of(request)
    try:
        account = await operations.create_account(runtime, name, account_id or None)
    except ApiError as exc:
        twin = await _just_created(runtime, name, account_id or operations.slugify(name)) if exc.status == 409 else None
        if twin is None:
            # the form again, with what was typed and what is wrong with it
            return await _render_accounts(request, exc.status, exc.message, name, account_id)
        account = twin  # a double-click: the first click made it; show it as made
    flash(request, f"Account “{account.name}” created, with every installed plugin turned on.")
    return redirect(integrations_url(account.id))


async def _just_created(runtime: Runtime, name: str, account_id: str) -> Account | None:
    """The account a repeated "Create account" (same name and id, moments apart) already made, or None."""
    existing = await runtime.store.get_account(account_id)
    if existing is None or existing.name != name.strip():
        return None
    return existing if runtime.clock() - existing.created_at < REPEAT_WINDOW_SECONDS else None


async def account_home(request: Request) -> Response:
    account = await account_from_path(request)
    return redirect(integrations_url(account.id))
