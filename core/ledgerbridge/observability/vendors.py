"""Vendor calls, measured and logged: httpx event hooks added to a plugin's client.

`instrument(client, vendor="books")` counts each answered request by status (`ledgerbridge_vendor_requests`,
429s also in `ledgerbridge_vendor_throttled`), times it to its response headers, and logs one line carrying the
request id of the event being delivered, the account, the plugin and the delivery. The line names the method
and the path, never the query string (vendors' query languages hold e-mail addresses) or a header.

Our request id is not sent to the vendors: the plugin decides, by what its vendor documents (none of the built-in
plugins' vendors documents a request header for it; their idempotency keys come from the delivery). Where a
vendor documents an id of its own on each response, the plugin names that header (`vendor_id_header`) and the log
line carries it as `vendor_request_id`, so a support ticket can quote both.
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


def instrument(client: httpx.AsyncClient, *, vendor: str, vendor_id_header: str | None = None) -> httpx.AsyncClient:
    """Add the hooks to `client` (once: instrumenting it again changes nothing) and return it.

    `vendor` labels the metrics and log lines; `vendor_id_header` names the response header in which the vendor
    documents its own id of each request, logged beside ours."""
    hooks = client.event_hooks
    if any(getattr(hook, "ledgerbridge_vendor", None) for hook in hooks.get("response", [])):
        return client
    id_header = vendor_id_header

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
