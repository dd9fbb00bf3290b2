"""Benchmark producer: a webhook route that verifies nothing but stores every event durably, as the vendor
plugins do (read the body, parse it, find the account, publish, acknowledge after the commit)."""

from __future__ import annotations

from ledgerbridge import PluginContext, hookimpl
from ledgerbridge.web import ApiError, parse_json, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    async def receive(request: Request) -> Response:
        body = parse_json(await read_body(request))
        ctx = await plugin.account_for_external_id(body["locationId"])
        if ctx is None:
            raise ApiError(404, "unknown location")
        stored = await ctx.notify(body["type"], body, external_id=body["webhookId"], object_key=f"order:{body['_id']}")
        return JSONResponse({"stored": stored})

    return [Route("/webhooks", receive, methods=["POST"])]


@hookimpl
async def on_notification(ctx: object, notification: object) -> None:
    """Processed in the background like a real plugin would, so the workers compete for the CPU."""
