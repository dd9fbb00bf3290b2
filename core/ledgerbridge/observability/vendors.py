"""Vendor calls, measured and logged: httpx event hooks added to a plugin's client.

`instrument(client, vendor="quickbooks")` counts each answered request by status (`ledgerbridge_vendor_requests`,
429s also in `ledgerbridge_vendor_throttled`), times it to its response headers, and logs one line carrying the
request id of the event being delivered, the account, the plugin and the delivery. The line names the method
and the path, never the query string (QuickBooks queries hold e-mail addresses) or a header.

Our request id is not sent to the vendors: none of them documents a request header for it (Intuit's `requestid`
is the idempotency key, which the plugins derive from the delivery). Where a vendor documents an id of its own
on the response (Intuit's `intuit_tid`), the log line carries it, so a support ticket can quote both.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from ledgerbridge.observability.context import log_fields
from ledgerbridge.observability.metrics import VENDOR_REQUESTS, VENDOR_SECONDS, VENDOR_THROTTLED

logger = logging.getLogger("ledgerbridge.vendor")

_STARTED = "ledgerbridge.started"
#: the response header in which a vendor documents its own id of the request
VENDOR_ID_HEADERS = {"quickbooks": "intuit_tid"}


def instrument(client: httpx.AsyncClient, *, vendor: str) -> httpx.AsyncClient:
    """Add the hooks to `client` (once: instrumenting it again changes nothing) and return it."""
    hooks = client.event_hooks
    if any(getattr(hook, "ledgerbridge_vendor", None) for hook in hooks.get("response", [])):
        return client
    id_header = VENDOR_ID_HEADERS.get(vendor)

    async def started(request: httpx.Request) -> None:
        request.extensions[_STARTED] = time.perf_counter()

    async def answered(response: httpx.Response) -> None:
        request = response.request
        began = request.extensions.get(_STARTED)
        seconds = time.perf_counter() - began if isinstance(began, float) else 0.0
        status = response.status_code
        VENDOR_REQUESTS.labels(vendor, str(status)).inc()
        VENDOR_SECONDS.labels(vendor).observe(seconds)
        if status == 429:
            VENDOR_THROTTLED.labels(vendor).inc()
        extra: dict[str, Any] = log_fields()
        extra.update(vendor=vendor, status=status, seconds=round(seconds, 4))
        if id_header is not None and id_header in response.headers:
            extra["vendor_request_id"] = response.headers[id_header]
        logger.log(
            logging.WARNING if status == 429 or status >= 500 else logging.INFO,
            "%s %s %s -> %d in %.3f s",
            vendor,
            request.method,
            request.url.path,
            status,
            seconds,
            extra=extra,
        )

    answered.ledgerbridge_vendor = vendor  # type: ignore[attr-defined]
    client.event_hooks = {
        "request": [*hooks.get("request", []), started],
        "response": [*hooks.get("response", []), answered],
    }
    return client
