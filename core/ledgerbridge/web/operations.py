"""Account operations shared by the admin JSON API and the web UI.

Each checks its input and raises `ApiError` with a status and a plain message; the admin API turns that into
JSON, the UI into a page. Every lookup is scoped by the account it is given.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ledgerbridge.runtime import Runtime, SettingsError
from ledgerbridge.store import Account, Delivery
from ledgerbridge.web.errors import ApiError

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
    try:
        return await runtime.create_account(account_id, name.strip(), plugins)
    except KeyError as exc:
        raise ApiError(409, f"an account with id {account_id!r} already exists") from exc


async def set_enabled(runtime: Runtime, account: Account, plugin: str, enabled: bool) -> None:
    require_plugin(runtime, plugin)
    await runtime.set_enabled(account.id, plugin, enabled)
    await runtime.store.log_activity(
        account.id, plugin, "info", f"{plugin} {'enabled' if enabled else 'disabled'}", {}, runtime.clock()
    )


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
    await runtime.store.set_plugin_settings(account.id, plugin, msgspec.to_builtins(settings))
    return settings


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
