"""The books' sync start on their card: since when documents sync, and the opt-in backfill to an earlier date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account
from ledgerbridge.ui.accounts import account_from_path, integrations_url
from ledgerbridge.ui.endpoint import form_text, redirect
from ledgerbridge.ui.render import runtime_of
from ledgerbridge.ui.session import flash
from ledgerbridge.web import operations

ANCHOR = "sync-start"


@dataclass(frozen=True)
class SyncStartView:
    start: str | None
    backfill_since: str | None


def _day(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") if timestamp is not None else None


async def sync_start_view(runtime: Runtime, account: Account) -> SyncStartView:
    current = await runtime.store.get_account(account.id) or account
    return SyncStartView(start=_day(await runtime.sync_start(account.id)), backfill_since=_day(current.backfill_since))


async def backfill_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    since = form_text(form, "since", max_length=10)
    await operations.set_backfill(runtime, account, since or None)
    flash(
        request,
        f"Payments and invoices created since {since} will sync." if since else "The backfill is off.",
    )
    return redirect(f"{integrations_url(account.id)}#{ANCHOR}")
