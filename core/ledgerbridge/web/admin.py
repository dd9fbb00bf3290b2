"""The admin JSON API (`/admin/api/...`): accounts, plugins per account, settings, activity, dead letters.

Every route needs the admin credential, and every account-scoped lookup goes through the account id in
the path, so no id of one account reaches another's data.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge.events import decode_event
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Account
from ledgerbridge.web import operations
from ledgerbridge.web.auth import require_admin
from ledgerbridge.web.bodies import read_json, whole_number
from ledgerbridge.web.errors import ApiError

__all__ = ["routes"]
DELIVERY_STATES = ("pending", "done", "skipped", "dead")
INT64_MAX = 2**63 - 1


class NewAccount(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    id: str | None = None
    plugins: list[str] | None = None


class AccountPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str


class Enablement(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    enabled: bool
    #: turning on a second plugin of a role (other books) switches to it; without it, that is a 409
    switch: bool = False


class SendSkipped(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: the skipped deliveries to send; omitted: every skipped delivery of the account
    ids: list[Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]] | None = None


class Backfill(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: YYYY-MM-DD: also sync payments and invoices created since then; null turns the backfill off
    since: str | None


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status, media_type="application/json")


def _runtime(request: Request) -> Runtime:
    require_admin(request)
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _account(request: Request) -> tuple[Runtime, Account]:
    runtime = _runtime(request)
    return runtime, await operations.get_account(runtime, request.path_params["account_id"])


def _plugin(runtime: Runtime, request: Request) -> str:
    return operations.require_plugin(runtime, request.path_params["plugin"])


async def list_plugins(request: Request) -> Response:
    runtime = _runtime(request)
    return _json(
        [
            {
                "name": i.name,
                "version": i.version,
                "distribution": i.distribution,
                "hooks": list(i.hooks),
                "role": i.role,
                "core": i.core,
            }
            for i in runtime.plugins.info()
        ]
    )


async def list_accounts(request: Request) -> Response:
    runtime = _runtime(request)
    return _json(await runtime.store.list_accounts())


async def create_account(request: Request) -> Response:
    runtime = _runtime(request)
    body = await read_json(request, NewAccount)
    account = await operations.create_account(runtime, body.name, body.id, body.plugins)
    return _json(account, 201)


async def get_account(request: Request) -> Response:
    runtime, account = await _account(request)
    states = {s.plugin: s for s in await runtime.store.list_plugin_states(account.id)}
    enabled = await runtime.enabled_plugins(account.id)
    plugins = []
    for name in runtime.plugins.names():
        state = states.get(name)
        plugins.append(
            {
                "name": name,
                "enabled": name in enabled,
                "paused_reason": state.paused_reason if state else None,
                "external_id": state.external_id if state else None,
                "role": runtime.plugins.role(name),
                "connected_at": state.connected_at if state else None,
            }
        )
    deliveries = await runtime.store.count_deliveries(account.id)
    sync_start = await runtime.sync_start(account.id)
    return _json({"account": account, "plugins": plugins, "deliveries": deliveries, "sync_start": sync_start})


async def patch_account(request: Request) -> Response:
    runtime, account = await _account(request)
    body = await read_json(request, AccountPatch)
    await runtime.store.rename_account(account.id, body.name)
    runtime.forget_account(account.id)
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
    await operations.set_enabled(runtime, account, plugin, body.enabled, switch=body.switch)
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
    settings = await operations.update_settings(runtime, account, plugin, changes, replace=request.method == "PUT")
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
    value = whole_number(raw, maximum)
    if value is None or value < 1:
        raise ApiError(400, f"{name} must be a whole number from 1 to {maximum}")
    return value


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
    value = whole_number(raw, INT64_MAX)
    if value is None:
        raise ApiError(404, f"no delivery {raw[:40]!r}")
    return value


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
    await operations.replay_delivery(runtime, account, delivery_id)
    return _json({"replayed": delivery_id}, 202)


async def send_skipped(request: Request) -> Response:
    runtime, account = await _account(request)
    body = await read_json(request, SendSkipped)
    return _json(await operations.send_skipped(runtime, account, body.ids), 202)


async def put_backfill(request: Request) -> Response:
    runtime, account = await _account(request)
    body = await read_json(request, Backfill)
    since = await operations.set_backfill(runtime, account, body.since)
    return _json({"backfill_since": since, "sync_start": await runtime.sync_start(account.id)})


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
    Route("/accounts/{account_id}/skipped/send", send_skipped, methods=["POST"]),
    Route("/accounts/{account_id}/backfill", put_backfill, methods=["PUT"]),
]
