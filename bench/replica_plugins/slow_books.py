"""Books behind a vendor API with a fixed latency per call (LEDGERBRIDGE_BENCH_LATENCY seconds): I/O-bound work."""

from __future__ import annotations

import asyncio
import os

from ledgerbridge import DeliveryContext, Payment, hookimpl

subscribes = ("payment",)
LATENCY = float(os.environ.get("LEDGERBRIDGE_BENCH_LATENCY", "0.2"))


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    await asyncio.sleep(LATENCY)
