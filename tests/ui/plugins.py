"""Small plugins the UI tests register: a producer of payments and a "demo books" plugin with a card."""

from __future__ import annotations

from typing import Any

import msgspec
from ledgerbridge import (
    AccountContext,
    CardAction,
    CardField,
    CardProgress,
    CardToggle,
    DeliveryContext,
    IntegrationCard,
    Payment,
    PermanentFailure,
    PluginContext,
    hookimpl,
)
from ledgerbridge.web.auth import is_admin
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route


class DemoSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    review_requests: bool = False
    memo: str = "synced by ledgerbridge"


class VendorRejected(PermanentFailure):
    """What a vendor's 400 looks like to the pipeline: a message plus the vendor's details."""

    def __init__(self, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


class Producer:
    """Publishes events (the tests call `ctx.publish`); consumes nothing."""


class DemoBooks:
    """An accounting plugin: a card with fields, actions, a toggle and (while importing) progress."""

    role = "accounting"

    def __init__(self) -> None:
        self.payments: list[tuple[str, str]] = []
        self.reject_payments = True
        self.refreshes: list[str] = []
        self.progress: CardProgress | None = None
        self.card_error: Exception | None = None

    @hookimpl
    def settings_schema(self) -> type[msgspec.Struct]:
        return DemoSettings

    @hookimpl
    async def integration_card(self, ctx: AccountContext) -> IntegrationCard:
        if self.card_error is not None:
            raise self.card_error
        settings: DemoSettings = await ctx.settings()
        account = ctx.account_id
        return IntegrationCard(
            title="Demo Books",
            status="connected",
            summary="Sales receipts for every CRM payment.",
            fields=(CardField(label="Company", value=f"Books of {ctx.account.name}"),),
            actions=(
                CardAction(label="Open books", url=ctx.plugin_context.url(f"books?account={account}"), method="GET"),
                CardAction(label="Refresh now", url=ctx.plugin_context.url(f"refresh?account={account}")),
            ),
            toggles=(
                CardToggle(
                    label="Ask for a review after payment",
                    setting="review_requests",
                    value=settings.review_requests,
                    help="Sends the customer a review request once a payment is synced.",
                ),
            ),
            progress=self.progress,
        )

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> list[BaseRoute]:
        async def refresh(request: Request) -> Response:
            if not is_admin(request):
                return JSONResponse({"error": "sign in"}, 401)
            account = request.query_params["account"]
            self.refreshes.append(account)
            return RedirectResponse(f"/accounts/{account}/settings/integrations", 303)

        async def books(request: Request) -> Response:
            return JSONResponse({"account": request.query_params.get("account"), "payments": self.payments})

        return [Route("/refresh", refresh, methods=["POST"]), Route("/books", books)]

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        self.payments.append((ctx.account_id, payment.payment_id))
        if self.reject_payments:
            raise VendorRejected(
                "QuickBooks refused the sales receipt: a required field is missing",
                {
                    "vendor_transaction_id": "1-abc-tid",
                    "vendor_message": "Required param missing: Line.Amount",
                    "code": "2020",
                },
            )
