"""Two producers for the kit's producer-side checks: `tidy` gets them right, `sloppy` gets each one wrong
(a route that lets malformed JSON through to a 500, a task that fails for an account that never connected,
an event whose field has the wrong type)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence
from typing import Any

from ledgerbridge import AccountContext, BackgroundTask, ContactSync, DeliveryContext, Payment, PluginContext, hookimpl
from ledgerbridge.testing.harness import sample_contact, sample_payment
from ledgerbridge.web import ApiError, parse_json, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

SECRET = b"kit-webhook-secret"


async def connect(ctx: AccountContext) -> None:
    """The kit's `prepare`: what an OAuth callback would store."""
    await ctx.put_secret("token", {"access": "token-1"})


class Tidy:
    @hookimpl
    def register_routes(self, plugin: PluginContext) -> Sequence[BaseRoute]:
        async def webhook(request: Request) -> Response:
            raw = await read_body(request)
            expected = hmac.new(SECRET, raw, "sha256").hexdigest()
            if not hmac.compare_digest(request.headers.get("x-signature", ""), expected):
                raise ApiError(401, "bad signature")
            body = parse_json(raw)
            if not isinstance(body, dict) or not isinstance(body.get("account"), str):
                raise ApiError(422, "an object with an account was expected")
            ctx = await plugin.account_for_external_id(body["account"])
            if ctx is None:
                raise ApiError(404, "unknown account")
            await ctx.notify("contact", body, external_id=str(body.get("id")), object_key="contact")
            return JSONResponse({"stored": True})

        async def callback(request: Request) -> Response:
            if not request.query_params.get("code"):
                raise ApiError(400, "no code")
            return JSONResponse({"connected": True})

        return [Route("/webhook", webhook, methods=["POST"]), Route("/callback", callback, methods=["GET"])]

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> Sequence[BackgroundTask]:
        async def import_contacts(ctx: AccountContext) -> None:
            if await ctx.get_secret("token") is None:
                return  # never connected: nothing to import yet
            sync = ContactSync(kind="imported", contact=sample_contact(), source_id="7")
            await ctx.publish(sync, external_id="contact-7")

        return [BackgroundTask(name="import-contacts", every_seconds=60, run=import_contacts)]


class Sloppy:
    @hookimpl
    def register_routes(self, plugin: PluginContext) -> Sequence[BaseRoute]:
        async def webhook(request: Request) -> Response:
            body = json.loads(await request.body())  # malformed JSON escapes as a 500
            return JSONResponse({"id": body["id"]})

        async def callback(request: Request) -> Response:
            return JSONResponse({"state": int(request.query_params["state"])})

        return [Route("/webhook", webhook, methods=["POST"]), Route("/callback", callback, methods=["GET"])]

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> Sequence[BackgroundTask]:
        async def poll(ctx: AccountContext) -> None:
            token: Any = await ctx.get_secret("token")
            assert token["access"]  # fails for an account that never connected
            # msgspec checks no types when a Struct is built: this publishes, and no consumer can decode it
            wrong = Payment(**{**_fields(sample_payment()), "payment_id": 42})
            await ctx.publish(wrong, external_id="payment-42")

        return [BackgroundTask(name="poll", every_seconds=60, run=poll)]


def _fields(payment: Payment) -> dict[str, Any]:
    return {name: getattr(payment, name) for name in payment.__struct_fields__}


class Roleless:
    """Implements the books' hooks but declares no role: no payment would ever reach it."""

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        return None
