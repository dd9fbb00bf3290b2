"""Producer for the crash test: POST /plugins/source/events {account, id, payment_id} is stored, then 200."""

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
        ctx = await plugin.account(body["account"])
        if ctx is None:
            raise ApiError(404, "no such account")
        amount = Money(amount=Decimal("5.00"), currency="USD")
        payment = Payment(
            payment_id=body["payment_id"],
            source_kind="order_form",
            payer=Contact(name="Crash Test", email="crash@example.com"),
            lines=(),
            subtotal=amount,
            discount=Money.zero("USD"),
            tax=Money.zero("USD"),
            total=amount,
            paid_at=datetime.now(UTC),
        )
        return JSONResponse({"stored": await ctx.publish(payment, external_id=body["id"])})

    return [Route("/events", receive, methods=["POST"])]
