"""Settings › Integrations: a card per installed plugin, its on/off switch, toggles and actions."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from ledgerbridge.cards import IntegrationCard
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account, PluginState
from ledgerbridge.ui.accounts import account_from_path, integrations_url
from ledgerbridge.ui.endpoint import form_bool, form_text, redirect
from ledgerbridge.ui.render import page, render_fragment, runtime_of
from ledgerbridge.ui.reviews import ReviewView, review_view
from ledgerbridge.ui.session import csrf_token, flash
from ledgerbridge.ui.sync_start import SyncStartView, sync_start_view
from ledgerbridge.web import operations
from ledgerbridge.web.errors import ApiError

logger = logging.getLogger("ledgerbridge.ui")

CARD_TIMEOUT_SECONDS = 5.0
STATUS_LABELS = {
    "connected": "Connected",
    "not_connected": "Not connected",
    "reconnect_needed": "Needs reconnecting",
    "error": "Error",
    "ready": "Ready",
}


@dataclass(frozen=True)
class ActionView:
    label: str
    url: str
    method: str
    style: str
    safe: bool


@dataclass(frozen=True)
class ToggleView:
    label: str
    setting: str
    value: bool
    help: str | None
    settable: bool


@dataclass(frozen=True)
class PluginCard:
    plugin: str
    title: str
    enabled: bool
    paused_reason: str | None
    card: IntegrationCard | None
    error: str | None
    actions: tuple[ActionView, ...]
    toggles: tuple[ToggleView, ...]
    role: str | None = None
    #: on the card of the account's books: the core's review-request switch and form
    reviews: ReviewView | None = None
    #: the plugin of the same role that is on instead (turning this one on switches to it)
    replaces: str | None = None
    #: on the card of the account's books: since when documents sync, and the backfill
    sync_start: SyncStartView | None = None

    @property
    def status(self) -> str:
        if self.error is not None:
            return "error"
        return self.card.status if self.card else "ready"

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def percent(self) -> int | None:
        progress = self.card.progress if self.card else None
        if progress is None or not progress.total:
            return None
        return max(0, min(100, round(100 * progress.done / progress.total)))


def is_safe_url(url: str) -> bool:
    """A link a card may point at: a path on this server or an http(s) URL, never `javascript:` and the like."""
    if url.startswith("/") and not url.startswith("//"):
        return True
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def boolean_settings(runtime: Runtime, plugin: str) -> frozenset[str]:
    """The settings a toggle may change: the `bool` fields of the plugin's settings schema."""
    schema = runtime.plugins.settings_schema(plugin)
    if schema is None:
        return frozenset()
    return frozenset(field.name for field in msgspec.structs.fields(schema) if field.type is bool)


async def _draw_card(runtime: Runtime, account: Account, plugin: str) -> IntegrationCard | None:
    ctx = await runtime.account_context(account.id, plugin)
    if ctx is None:
        raise ApiError(404, f"no account {account.id!r}")
    return await asyncio.wait_for(runtime.plugins.card(plugin, ctx), CARD_TIMEOUT_SECONDS)


async def plugin_card(runtime: Runtime, account: Account, plugin: str, state: PluginState | None) -> PluginCard:
    card: IntegrationCard | None = None
    error: str | None = None
    try:
        card = await _draw_card(runtime, account, plugin)
    except TimeoutError:
        error = f"{plugin} took longer than {CARD_TIMEOUT_SECONDS:.0f} s to draw its card; reload to try again."
    except Exception as exc:
        logger.exception("%s could not draw its card for %s", plugin, account.id)
        error = f"{plugin} could not draw its card: {exc}"
    settable = boolean_settings(runtime, plugin)
    actions = tuple(
        ActionView(label=a.label, url=a.url, method=a.method, style=a.style, safe=is_safe_url(a.url))
        for a in (card.actions if card else ())
    )
    toggles = tuple(
        ToggleView(label=t.label, setting=t.setting, value=t.value, help=t.help, settable=t.setting in settable)
        for t in (card.toggles if card else ())
    )
    enabled = bool(state and state.enabled)
    role = runtime.plugins.role(plugin)
    books = role == "accounting" and enabled
    active = await runtime.active_plugin(account.id, role) if role is not None else None
    return PluginCard(
        plugin=plugin,
        title=card.title if card else plugin,
        enabled=enabled,
        paused_reason=state.paused_reason if state else None,
        card=card,
        error=error,
        actions=actions,
        toggles=toggles,
        role=role,
        reviews=await review_view(runtime, account) if books else None,
        sync_start=await sync_start_view(runtime, account) if books else None,
        replaces=active if active is not None and active != plugin else None,
    )


async def account_cards(runtime: Runtime, account: Account) -> list[PluginCard]:
    states = {s.plugin: s for s in await runtime.store.list_plugin_states(account.id)}
    names = [name for name in runtime.plugins.names() if not runtime.plugins.is_core(name)]
    return list(await asyncio.gather(*(plugin_card(runtime, account, n, states.get(n)) for n in names)))


def _card_context(request: Request, account: Account) -> dict[str, Any]:
    return {"account": account, "csrf_token": csrf_token(request)}


def connection_outcome(request: Request) -> tuple[str, str] | None:
    """What a plugin's OAuth callback reported when it sent the user back here: (kind, message) or None."""
    query = request.query_params
    if query.get("error"):
        return "error", f"The connection was not made: {query['error'][:200]}."
    if query.get("connected") == "1":
        company = query.get("company", "")[:200]
        return "ok", f"Connected to {company}." if company else "Connected."
    return None


async def integrations_page(request: Request) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    cards = await account_cards(runtime, account)
    return page(
        request,
        "integrations.html",
        title="Settings › Integrations",
        section="integrations",
        account=account,
        cards=cards,
        outcome=connection_outcome(request),
    )


def _plugin_from_path(request: Request) -> str:
    return operations.require_plugin(runtime_of(request), request.path_params["plugin"])


async def enabled_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    plugin = _plugin_from_path(request)
    enabled = form_bool(form, "enabled")
    switch = form.get("switch") == "true"
    role = runtime.plugins.role(plugin)
    current = await runtime.active_plugin(account.id, role) if role is not None and enabled else None
    if current is not None and current != plugin and not switch:
        return page(
            request,
            "switch.html",
            title="Switch the books?",
            section="integrations",
            account=account,
            plugin=plugin,
            current=current,
            role=role,
        )
    await operations.set_enabled(runtime, account, plugin, enabled, switch=switch)
    message = f"{plugin} is {'on' if enabled else 'off'} for {account.name}."
    if switch and current is not None:
        message = f"The books of {account.name} are now kept by {plugin}; {current} is off."
    flash(request, message)
    return redirect(f"{integrations_url(account.id)}#plugin-{plugin}")


async def setting_submit(request: Request, form: FormData) -> Response:
    runtime = runtime_of(request)
    account = await account_from_path(request)
    plugin = _plugin_from_path(request)
    setting = form_text(form, "setting", max_length=100)
    if setting not in boolean_settings(runtime, plugin):
        raise ApiError(422, f"{plugin} has no on/off setting named {setting!r}")
    value = form_bool(form, "value")
    await operations.update_settings(runtime, account, plugin, {setting: value})
    flash(request, f"{plugin}: {setting.replace('_', ' ')} turned {'on' if value else 'off'}.")
    return redirect(f"{integrations_url(account.id)}#plugin-{plugin}")


async def card_json(request: Request) -> Response:
    """What the page's script polls while a card shows progress: the card as data and as HTML."""
    runtime = runtime_of(request)
    account = await account_from_path(request)
    plugin = _plugin_from_path(request)
    state = await runtime.store.get_plugin_state(account.id, plugin)
    item = await plugin_card(runtime, account, plugin, state)
    html = render_fragment("card.html", item=item, **_card_context(request, account))
    body = {"plugin": plugin, "enabled": item.enabled, "error": item.error, "card": item.card, "html": html}
    return Response(msgspec.json.encode(body), media_type="application/json", headers={"Cache-Control": "no-store"})
