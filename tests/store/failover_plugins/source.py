"""A vendor's webhooks, as a source plugin receives them: POST /plugins/source/events stores a payment event."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ledgerbridge import Contact, Money, Payment, PluginContext, hookimpl
from ledgerbridge.web import ApiError, parse_json, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@hookimpl
def register_routes(plugin: PluginContext) -> list[Route]:
    async def receive(request: Request) -> Response:
        body = parse_json(await read_body(request))
        if not isinstance(body, dict) or not {"account", "id", "payment_id", "version"} <= body.keys():
            raise ApiError(422, "expected an object with account, id, payment_id and version")
        ctx = await plugin.account(str(body["account"]))
        if ctx is None:
            raise ApiError(404, f"no account {body['account']!r}")
        total = Money(amount=Decimal(int(body["version"])), currency="USD")
        payment = Payment(
            payment_id=str(body["payment_id"]),
            source_kind="order_form",
            payer=Contact(name="Ada Lovelace", email="ada@example.com"),
            lines=(),
            subtotal=total,
            discount=Money.zero("USD"),
            tax=Money.zero("USD"),
            total=total,
            paid_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        return JSONResponse({"stored": await ctx.publish(payment, external_id=str(body["id"]))})

    return [Route("/events", receive, methods=["POST"])]
