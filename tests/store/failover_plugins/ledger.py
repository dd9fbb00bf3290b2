"""A vendor's books, as a consumer plugin writes to them: one document per payment event, de-duplicated by the
request id derived from the delivery (as QuickBooks' `requestid`), in a table of the same PostgreSQL database."""

from __future__ import annotations

import asyncio
import os

import psycopg
from ledgerbridge import DeliveryContext, Payment, hookimpl

subscribes = ("payment",)
VENDOR_LATENCY_SECONDS = 0.01


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    await asyncio.sleep(VENDOR_LATENCY_SECONDS)
    async with await psycopg.AsyncConnection.connect(os.environ["LEDGERBRIDGE_DATABASE_URL"], autocommit=True) as db:
        await db.execute(
            "INSERT INTO vendor_documents(request_id, account_id, payment_id, version) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (request_id) DO NOTHING",
            (ctx.idempotency_key, ctx.account_id, payment.payment_id, int(payment.total.amount)),
        )
