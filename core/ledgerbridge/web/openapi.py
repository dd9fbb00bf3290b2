"""The OpenAPI 3.1 document of the admin API and of every plugin's webhook routes: `/admin/api/openapi.json`.

Request bodies are described by the same msgspec structs the routes decode with, so the document cannot
drift from what the server accepts. Every 4xx answer is the `{"error": {"status", "message"}}` envelope.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from ledgerbridge import __version__
from ledgerbridge.store import Account, ActivityEntry, Delivery
from ledgerbridge.web.admin import DELIVERY_STATES, AccountPatch, Backfill, Enablement, NewAccount, SendSkipped
from ledgerbridge.web.auth import require_admin

API = "/admin/api"
INT64_MAX = 2**63 - 1
ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
                    "required": ["status", "message"],
                },
                {"type": "string", "description": "the message alone (some plugins' routes)"},
            ]
        }
    },
    "required": ["error"],
}
ACCOUNT_ID = {"name": "account_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"}}  # fmt: skip
PLUGIN = {"name": "plugin", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[a-z0-9_-]+$"}}
DELIVERY_ID = {"name": "delivery_id", "in": "path", "required": True,
               "schema": {"type": "integer", "minimum": 1, "maximum": INT64_MAX}}  # fmt: skip


def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    structs = [Account, ActivityEntry, Delivery, NewAccount, AccountPatch, Enablement, SendSkipped, Backfill]
    refs, components = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    return dict(zip([s.__name__ for s in structs], refs, strict=True)), components


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _operation(summary: str, ok: tuple[str, dict[str, Any] | None], *, body: dict[str, Any] | None = None,
               parameters: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:  # fmt: skip
    status, schema = ok
    answer: dict[str, Any] = {"description": "done"}
    if schema is not None:
        answer.update(_json(schema))
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": list(parameters),
        "responses": {status: answer, "4XX": {"description": "refused, with a message", **_json(ERROR)}},
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
    return operation


def _admin_paths(refs: dict[str, Any]) -> dict[str, Any]:
    account = f"{API}/accounts/{{account_id}}"
    plugin = f"{account}/plugins/{{plugin}}"
    delivery = f"{account}/deliveries/{{delivery_id}}"
    obj, array = {"type": "object"}, {"type": "array"}
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
    before = {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 2**62}}
    state = {"name": "state", "in": "query", "schema": {"type": "string", "enum": list(DELIVERY_STATES)}}
    return {
        f"{API}/plugins": {"get": _operation("installed plugins and their hooks", ("200", array))},
        f"{API}/accounts": {
            "get": _operation("every account", ("200", {"type": "array", "items": refs["Account"]})),
            "post": _operation("create an account", ("201", refs["Account"]), body=refs["NewAccount"]),
        },
        account: {
            "get": _operation("an account, its plugins and delivery counts", ("200", obj), parameters=(ACCOUNT_ID,)),
            "patch": _operation(
                "rename", ("200", refs["Account"]), body=refs["AccountPatch"], parameters=(ACCOUNT_ID,)
            ),
            "delete": _operation("delete the account and everything of it", ("204", None), parameters=(ACCOUNT_ID,)),
        },
        plugin: {
            "put": _operation(
                "enable or disable a plugin", ("200", obj), body=refs["Enablement"], parameters=(ACCOUNT_ID, PLUGIN)
            ),
        },
        f"{plugin}/settings": {
            "get": _operation("the plugin's settings", ("200", obj), parameters=(ACCOUNT_ID, PLUGIN)),
            "put": _operation("replace settings", ("200", obj), body=obj, parameters=(ACCOUNT_ID, PLUGIN)),
            "patch": _operation("change some settings", ("200", obj), body=obj, parameters=(ACCOUNT_ID, PLUGIN)),
        },
        f"{plugin}/card": {"get": _operation("the integration card", ("200", obj), parameters=(ACCOUNT_ID, PLUGIN))},
        f"{account}/activity": {
            "get": _operation(
                "the activity log, newest first",
                ("200", {"type": "array", "items": refs["ActivityEntry"]}),
                parameters=(ACCOUNT_ID, limit, before),
            ),
        },
        f"{account}/deliveries": {
            "get": _operation(
                "deliveries",
                ("200", {"type": "array", "items": refs["Delivery"]}),
                parameters=(ACCOUNT_ID, state, limit),
            ),
        },
        delivery: {"get": _operation("a delivery and its event", ("200", obj), parameters=(ACCOUNT_ID, DELIVERY_ID))},
        f"{account}/skipped/send": {
            "post": _operation(
                "send skipped deliveries after all", ("202", obj), body=refs["SendSkipped"], parameters=(ACCOUNT_ID,)
            ),
        },
        f"{account}/backfill": {
            "put": _operation(
                "sync what was created since a date", ("200", obj), body=refs["Backfill"], parameters=(ACCOUNT_ID,)
            ),
        },
        f"{delivery}/replay": {
            "post": _operation(
                "put a dead letter back in the queue", ("202", obj), parameters=(ACCOUNT_ID, DELIVERY_ID)
            ),
        },
    }


def _webhook_paths(routes: list[BaseRoute]) -> dict[str, Any]:
    """Every plugin route whose path names a webhook: vendors POST JSON there, signed as each vendor does."""
    paths: dict[str, Any] = {}
    for mount in routes:
        if not isinstance(mount, Mount) or not mount.path.startswith("/plugins/"):
            continue
        for route in mount.routes:
            if isinstance(route, Route) and "webhook" in route.path and "POST" in (route.methods or ()):
                summary = f"webhook of the {mount.path.split('/')[-1]} plugin"
                operation = _operation(summary, ("200", {"type": "object"}), body={})
                operation["security"] = []
                operation["responses"]["429"] = {"description": "not stored; the vendor retries", **_json(ERROR)}
                operation["responses"]["503"] = {"description": "keys unavailable; the vendor retries", **_json(ERROR)}
                paths[mount.path + route.path] = {"post": operation}
    return paths


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    refs, components = _schemas()
    return {
        "openapi": "3.1.0",
        "info": {"title": "ledgerbridge admin API and webhooks", "version": __version__},
        "paths": {**_admin_paths(refs), **_webhook_paths(routes)},
        "components": {
            "schemas": components,
            "securitySchemes": {"admin": {"type": "http", "scheme": "bearer", "description": "the admin token"}},
        },
        "security": [{"admin": []}],
    }


async def openapi_json(request: Request) -> Response:
    require_admin(request)
    return Response(msgspec.json.encode(document(list(request.app.routes))), media_type="application/json")


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
