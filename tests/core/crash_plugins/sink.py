"""Consumer for the crash test: appends one line per side effect to $CRASH_SINK_FILE.

With $CRASH_SINK_HOLD set it never finishes a delivery, so the server acknowledges events it has not
processed yet. The side effect is idempotent by key, as a vendor's requestid makes it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ledgerbridge import DeliveryContext, Payment, hookimpl

role = "accounting"


@hookimpl
async def on_payment(ctx: DeliveryContext, payment: Payment) -> None:
    if os.environ.get("CRASH_SINK_HOLD"):
        await asyncio.Event().wait()
    path = Path(os.environ["CRASH_SINK_FILE"])
    done = path.read_text().split("\n") if path.exists() else []
    line = f"{ctx.idempotency_key} {payment.payment_id}"
    if line not in done:
        with path.open("a") as handle:
            handle.write(line + "\n")
