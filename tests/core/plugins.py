"""Small plugins the core tests register: a producer and recording consumers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ledgerbridge import (
    Contact,
    ContactSync,
    DeliveryContext,
    FirstInvoicePaid,
    InvoiceChange,
    Money,
    Notification,
    Payment,
    PluginContext,
    hookimpl,
)
from ledgerbridge.web import ApiError, parse_json, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def make_payment(payment_id: str = "txn-1", amount: str = "10.00", email: str = "ada@example.com") -> Payment:
    money = Money(amount=Decimal(amount), currency="USD")
    zero = Money.zero("USD")
    return Payment(
        payment_id=payment_id,
        source_kind="order_form",
        payer=Contact(name="Ada Lovelace", email=email),
        lines=(),
        subtotal=money,
        discount=zero,
        tax=zero,
        total=money,
        paid_at=datetime.now(UTC),
    )


class Producer:
    """Publishes events; consumes nothing."""


class Recorder:
    """Records every business event it is handed; `fail` decides per call whether to raise.

    An observer by default (it subscribes to every business event); `role="accounting"` or `"crm"` makes it
    the account's books or CRM instead.
    """

    subscribes: tuple[str, ...] = ("payment", "invoice_change", "contact_sync", "first_invoice_paid", "invoice_paid")

    def __init__(self, fail: Any = None, *, role: str | None = None) -> None:
        if role is not None:
            self.role = role
            self.subscribes = ()
        self.calls: list[tuple[str, str, Any]] = []
        self.fail = fail
        self.event = asyncio.Event()

    def _record(self, ctx: DeliveryContext, hook: str, value: Any) -> None:
        self.calls.append((ctx.account_id, hook, value))
        self.event.set()
        if self.fail is not None:
            error = self.fail(ctx, value)
            if error is not None:
                raise error

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        self._record(ctx, "on_payment", payment)

    @hookimpl
    def on_invoice_change(self, ctx: DeliveryContext, change: InvoiceChange) -> None:
        self._record(ctx, "on_invoice_change", change)

    @hookimpl
    async def on_contact_sync(self, ctx: DeliveryContext, sync: ContactSync) -> None:
        self._record(ctx, "on_contact_sync", sync)

    @hookimpl
    async def on_first_invoice_paid(self, ctx: DeliveryContext, event: FirstInvoicePaid) -> None:
        self._record(ctx, "on_first_invoice_paid", event)

    @hookimpl
    async def on_notification(self, ctx: DeliveryContext, notification: Notification) -> None:
        self._record(ctx, "on_notification", notification)

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async def reached() -> None:
            while len(self.calls) < count:
                self.event.clear()
                await self.event.wait()

        await asyncio.wait_for(reached(), timeout)


class WebhookSource:
    """A producer with a webhook route, as a vendor plugin would have: verify, parse, persist, acknowledge."""

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> list[Route]:
        async def receive(request: Request) -> Response:
            body = parse_json(await read_body(request))
            if not isinstance(body, dict) or not {"account", "id", "payment_id"} <= body.keys():
                raise ApiError(422, "expected an object with account, id and payment_id")
            ctx = await plugin.account(str(body["account"]))
            if ctx is None:
                raise ApiError(404, f"no account {body['account']!r}")
            payment = make_payment(str(body["payment_id"]), str(body.get("amount", "10.00")))
            new = await ctx.publish(payment, external_id=str(body["id"]))
            return JSONResponse({"stored": new}, 200)

        return [Route("/events", receive, methods=["POST"])]
