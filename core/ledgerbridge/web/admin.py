"""The admin JSON API (`/admin/api/...`): accounts, plugins per account, settings, activity, dead letters.

Every route needs the admin credential, and every account-scoped lookup goes through the account id in
the path, so no id of one account reaches another's data.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge.models import decode_event
from ledgerbridge.runtime import Runtime, SettingsError
from ledgerbridge.store import Account
from ledgerbridge.web.auth import require_admin
from ledgerbridge.web.bodies import read_json
from ledgerbridge.web.errors import ApiError

ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DELIVERY_STATES = ("pending", "done", "skipped", "dead")


class NewAccount(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    id: str | None = None
    plugins: list[str] | None = None


class AccountPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str


class Enablement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status, media_type="application/json")


def _runtime(request: Request) -> Runtime:
    require_admin(request)
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _account(request: Request) -> tuple[Runtime, Account]:
    runtime = _runtime(request)
    account = await runtime.store.get_account(request.path_params["account_id"])
    if account is None:
        raise ApiError(404, f"no account {request.path_params['account_id']!r}")
    return runtime, account


def _plugin(runtime: Runtime, request: Request) -> str:
    plugin: str = request.path_params["plugin"]
    if not runtime.plugins.has(plugin):
        raise ApiError(404, f"no plugin named {plugin!r} is installed")
    return plugin


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:64]
    return slug or "account"


async def list_plugins(request: Request) -> Response:
    runtime = _runtime(request)
    return _json(
        [
            {"name": i.name, "version": i.version, "distribution": i.distribution, "hooks": list(i.hooks)}
            for i in runtime.plugins.info()
        ]
    )


async def list_accounts(request: Request) -> Response:
    runtime = _runtime(request)
    return _json(await runtime.store.list_accounts())


async def create_account(request: Request) -> Response:
    runtime = _runtime(request)
    body = await read_json(request, NewAccount)
    if not body.name.strip():
        raise ApiError(422, "an account needs a name")
    account_id = body.id or slugify(body.name)
    if not ACCOUNT_ID.match(account_id):
        raise ApiError(
            422, "an account id is 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    for plugin in body.plugins or ():
        if not runtime.plugins.has(plugin):
            raise ApiError(422, f"no plugin named {plugin!r} is installed")
    try:
        account = await runtime.create_account(account_id, body.name.strip(), body.plugins)
    except KeyError as exc:
        raise ApiError(409, f"an account with id {account_id!r} already exists") from exc
    return _json(account, 201)


async def get_account(request: Request) -> Response:
    runtime, account = await _account(request)
    states = {s.plugin: s for s in await runtime.store.list_plugin_states(account.id)}
    plugins = []
    for name in runtime.plugins.names():
        state = states.get(name)
        plugins.append(
            {
                "name": name,
                "enabled": bool(state and state.enabled),
                "paused_reason": state.paused_reason if state else None,
                "external_id": state.external_id if state else None,
            }
        )
    deliveries = await runtime.store.count_deliveries(account.id)
    return _json({"account": account, "plugins": plugins, "deliveries": deliveries})


async def patch_account(request: Request) -> Response:
    runtime, account = await _account(request)
    body = await read_json(request, AccountPatch)
    await runtime.store.rename_account(account.id, body.name)
    return _json(msgspec.structs.replace(account, name=body.name))


async def delete_account(request: Request) -> Response:
    runtime, account = await _account(request)
    await runtime.store.delete_account(account.id)
    runtime.forget_account(account.id)
    return Response(status_code=204)


async def set_plugin_enabled(request: Request) -> Response:
    runtime, account = await _account(request)
    plugin = _plugin(runtime, request)
    body = await read_json(request, Enablement)
    await runtime.set_enabled(account.id, plugin, body.enabled)
    await runtime.store.log_activity(
        account.id, plugin, "info", f"{plugin} {'enabled' if body.enabled else 'disabled'}", {}, runtime.clock()
    )
    return _json({"plugin": plugin, "enabled": body.enabled})


async def get_settings(request: Request) -> Response:
    runtime, account = await _account(request)
    plugin = _plugin(runtime, request)
    state = await runtime.store.get_plugin_state(account.id, plugin)
    return _json(runtime.decode_settings(plugin, state.settings))


async def put_settings(request: Request) -> Response:
    runtime, account = await _account(request)
    plugin = _plugin(runtime, request)
    changes = await read_json(request, dict[str, Any])
    schema = runtime.plugins.settings_schema(plugin)
    if schema is not None:
        known = set(schema.__struct_fields__)
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ApiError(422, f"unknown {plugin} settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    state = await runtime.store.get_plugin_state(account.id, plugin)
    merged = changes if request.method == "PUT" else {**state.settings, **changes}
    try:
        settings = runtime.decode_settings(plugin, merged)
    except SettingsError as exc:
        raise ApiError(422, str(exc)) from exc
    await runtime.store.set_plugin_settings(account.id, plugin, msgspec.to_builtins(settings))
    return _json(settings)


async def get_card(request: Request) -> Response:
    runtime, account = await _account(request)
    plugin = _plugin(runtime, request)
    ctx = await runtime.account_context(account.id, plugin)
    assert ctx is not None
    card = await runtime.plugins.card(plugin, ctx)
    if card is None:
        raise ApiError(404, f"{plugin} has no integration card")
    return _json(card)


def _int_param(request: Request, name: str, default: int | None, maximum: int = 1000) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) <= maximum:
        raise ApiError(400, f"{name} must be a whole number from 1 to {maximum}")
    return int(raw)


async def list_activity(request: Request) -> Response:
    runtime, account = await _account(request)
    limit = _int_param(request, "limit", 100) or 100
    before = _int_param(request, "before", None, maximum=2**62)
    return _json(await runtime.store.list_activity(account.id, limit, before))


async def list_deliveries(request: Request) -> Response:
    runtime, account = await _account(request)
    state = request.query_params.get("state")
    if state is not None and state not in DELIVERY_STATES:
        raise ApiError(400, f"state must be one of {', '.join(DELIVERY_STATES)}")
    limit = _int_param(request, "limit", 100) or 100
    return _json(await runtime.store.list_deliveries(account.id, state, limit))  # type: ignore[arg-type]


def _delivery_id(request: Request) -> int:
    raw: str = request.path_params["delivery_id"]
    if not raw.isdigit():
        raise ApiError(404, f"no delivery {raw!r}")
    return int(raw)


async def get_delivery(request: Request) -> Response:
    runtime, account = await _account(request)
    delivery = await runtime.store.get_delivery(account.id, _delivery_id(request))
    if delivery is None:
        raise ApiError(404, f"no delivery {request.path_params['delivery_id']} in account {account.id!r}")
    event = await runtime.store.get_event(account.id, delivery.event_seq)
    payload = msgspec.to_builtins(decode_event(event.payload)) if event else None
    return _json({"delivery": delivery, "event": payload, "source": event.source if event else None})


async def replay_delivery(request: Request) -> Response:
    runtime, account = await _account(request)
    delivery_id = _delivery_id(request)
    delivery = await runtime.store.get_delivery(account.id, delivery_id)
    if delivery is None:
        raise ApiError(404, f"no delivery {delivery_id} in account {account.id!r}")
    if not await runtime.store.replay_delivery(account.id, delivery_id, runtime.clock()):
        raise ApiError(409, f"delivery {delivery_id} is {delivery.state}, not a dead letter; nothing to replay")
    await runtime.store.log_activity(
        account.id, delivery.plugin, "info", f"dead letter {delivery_id} replayed", {}, runtime.clock()
    )
    runtime.dispatcher.wake()
    return _json({"replayed": delivery_id}, 202)


routes = [
    Route("/plugins", list_plugins),
    Route("/accounts", list_accounts, methods=["GET"]),
    Route("/accounts", create_account, methods=["POST"]),
    Route("/accounts/{account_id}", get_account, methods=["GET"]),
    Route("/accounts/{account_id}", patch_account, methods=["PATCH"]),
    Route("/accounts/{account_id}", delete_account, methods=["DELETE"]),
    Route("/accounts/{account_id}/plugins/{plugin}", set_plugin_enabled, methods=["PUT"]),
    Route("/accounts/{account_id}/plugins/{plugin}/settings", get_settings, methods=["GET"]),
    Route("/accounts/{account_id}/plugins/{plugin}/settings", put_settings, methods=["PUT", "PATCH"]),
    Route("/accounts/{account_id}/plugins/{plugin}/card", get_card, methods=["GET"]),
    Route("/accounts/{account_id}/activity", list_activity),
    Route("/accounts/{account_id}/deliveries", list_deliveries),
    Route("/accounts/{account_id}/deliveries/{delivery_id}", get_delivery),
    Route("/accounts/{account_id}/deliveries/{delivery_id}/replay", replay_delivery, methods=["POST"]),
]
