"""Account operations shared by the admin JSON API and the web UI.

Each checks its input and raises `ApiError` with a status and a plain message; the admin API turns that into
JSON, the UI into a page. Every lookup is scoped by the account it is given.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec

from ledgerbridge import reviews
from ledgerbridge.runtime import NothingToSend, RoleConflict, Runtime, SettingsError
from ledgerbridge.store import Account, Delivery
from ledgerbridge.web.errors import ApiError

SEND_LIMIT = 1000

ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    return slug or "account"


async def get_account(runtime: Runtime, account_id: str) -> Account:
    account = await runtime.store.get_account(account_id)
    if account is None:
        raise ApiError(404, f"no account {account_id!r}")
    return account


def require_plugin(runtime: Runtime, plugin: str) -> str:
    if not runtime.plugins.has(plugin):
        raise ApiError(404, f"no plugin named {plugin!r} is installed")
    return plugin


async def create_account(
    runtime: Runtime, name: str, account_id: str | None = None, plugins: list[str] | None = None
) -> Account:
    if not name.strip():
        raise ApiError(422, "an account needs a name")
    account_id = account_id or slugify(name)
    if not ACCOUNT_ID.match(account_id):
        raise ApiError(
            422, "an account id is 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    for plugin in plugins or ():
        if not runtime.plugins.has(plugin):
            raise ApiError(422, f"no plugin named {plugin!r} is installed")
        if runtime.plugins.is_core(plugin):
            raise ApiError(422, f"{plugin} is part of the core and always on")
    try:
        return await runtime.create_account(account_id, name.strip(), plugins)
    except RoleConflict as exc:
        raise ApiError(409, str(exc)) from exc
    except KeyError as exc:
        raise ApiError(409, f"an account with id {account_id!r} already exists") from exc


async def set_enabled(runtime: Runtime, account: Account, plugin: str, enabled: bool, *, switch: bool = False) -> None:
    """Turn a plugin on or off; a second plugin of a role is a 409 unless `switch` (then the first goes off)."""
    require_plugin(runtime, plugin)
    try:
        replaced = await runtime.set_enabled(account.id, plugin, enabled, switch=switch)
    except RoleConflict as exc:
        raise ApiError(409, str(exc)) from exc
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc
    message = f"{plugin} {'enabled' if enabled else 'disabled'}"
    if replaced is not None:
        message = f"switched from {replaced} to {plugin}"
    await runtime.store.log_activity(account.id, plugin, "info", message, {}, runtime.clock())


async def update_settings(
    runtime: Runtime, account: Account, plugin: str, changes: dict[str, Any], *, replace: bool = False
) -> Any:
    """Validate `changes` against the plugin's settings schema and save them; the decoded settings."""
    require_plugin(runtime, plugin)
    schema = runtime.plugins.settings_schema(plugin)
    if schema is not None:
        known = set(schema.__struct_fields__)
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ApiError(422, f"unknown {plugin} settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    state = await runtime.store.get_plugin_state(account.id, plugin)
    merged = changes if replace else {**state.settings, **changes}
    try:
        settings = runtime.decode_settings(plugin, merged)
    except SettingsError as exc:
        raise ApiError(422, str(exc)) from exc
    if isinstance(settings, reviews.ReviewSettings) and settings.enabled:
        problems = await review_problems(runtime, account, settings, await runtime.default_review_link(account.id))
        if problems:
            raise ApiError(422, "Review requests cannot be switched on yet: " + "; ".join(problems) + ".")
    await runtime.store.set_plugin_settings(account.id, plugin, msgspec.to_builtins(settings))
    runtime.config_versions.bump(account.id)
    return settings


async def review_problems(
    runtime: Runtime, account: Account, settings: reviews.ReviewSettings, default_link: str | None
) -> list[str]:
    """What keeps the account's review requests from working (the switch stays off until this is empty)."""
    crm = await runtime.active_plugin(account.id, "crm")
    books = await runtime.active_plugin(account.id, "accounting")
    problems = reviews.missing(settings, default_link, crm)
    if books is None:
        problems.insert(0, "turn on the books (an accounting plugin): they tell when a first invoice is paid")
    return problems


async def send_skipped(runtime: Runtime, account: Account, delivery_ids: list[int] | None = None) -> dict[str, Any]:
    """Send skipped events now, through the same idempotent deliveries (nothing is booked twice).

    `delivery_ids` None: every skipped delivery of the account (up to SEND_LIMIT). The answer says which went
    where and which could not go, and why.
    """
    if delivery_ids is None:
        chosen = await runtime.store.list_deliveries(account.id, "skipped", SEND_LIMIT)
    else:
        chosen = []
        for delivery_id in delivery_ids:
            found = await runtime.store.get_delivery(account.id, delivery_id)
            if found is None:
                raise ApiError(404, f"no delivery {delivery_id} in account {account.id!r}")
            chosen.append(found)
    sent: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for delivery in sorted(chosen, key=lambda d: d.id):
        try:
            target = await runtime.send_skipped(account.id, delivery, one_by_one=delivery_ids is not None)
        except NothingToSend as exc:
            refused.append({"id": delivery.id, "reason": str(exc)})
            continue
        sent.append({"id": delivery.id, "plugin": target})
    if sent:
        await runtime.store.log_activity(
            account.id, None, "info", f"{len(sent)} skipped event(s) sent on request", {}, runtime.clock()
        )
    if delivery_ids is not None and not sent:
        raise ApiError(409, "; ".join(r["reason"] for r in refused) or "nothing to send")
    return {"sent": sent, "refused": refused}


async def set_backfill(runtime: Runtime, account: Account, since: str | None) -> float | None:
    """Also sync payments and invoices created since `since` (YYYY-MM-DD, UTC); None or "" turns it off."""
    if not since:
        await runtime.set_backfill(account.id, None)
        return None
    try:
        moment = datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ApiError(422, f"a backfill date is written YYYY-MM-DD, not {since[:40]!r}") from exc
    if moment.timestamp() > runtime.clock():
        raise ApiError(422, "a backfill date must be in the past")
    await runtime.set_backfill(account.id, moment.timestamp())
    await runtime.store.log_activity(
        account.id, None, "info", f"backfill set: documents since {since} will sync", {}, runtime.clock()
    )
    return moment.timestamp()


async def replay_delivery(runtime: Runtime, account: Account, delivery_id: int) -> Delivery:
    """Put a dead letter back in the queue, once; a 409 when it is not (or no longer) dead."""
    delivery = await runtime.store.get_delivery(account.id, delivery_id)
    if delivery is None:
        raise ApiError(404, f"no delivery {delivery_id} in account {account.id!r}")
    if not await runtime.store.replay_delivery(account.id, delivery_id, runtime.clock()):
        raise ApiError(409, f"delivery {delivery_id} is {delivery.state}, not a dead letter; nothing to replay")
    await runtime.store.log_activity(
        account.id, delivery.plugin, "info", f"dead letter {delivery_id} replayed", {}, runtime.clock()
    )
    runtime.dispatcher.wake()
    return delivery
