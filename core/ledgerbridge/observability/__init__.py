"""Operating the server: Prometheus metrics, a request id that follows an event, structured logs.

- `metrics`: the counters and histograms of this process and the store's backlog read at scrape time;
  `endpoint` serves them at `GET /metrics`.
- `middleware`: the request id of every HTTP request (`X-Request-ID`), and the webhook counters.
- `context`: the request id and delivery the current task works for (contextvars).
- `vendors`: `instrument(http_client, vendor=...)` measures and logs a plugin's vendor calls.
- `logs`: `configure_logging("text" | "json")`.

This package is imported by the store's records (`context`): nothing here imports the store or the web app at
module level except `endpoint`, which the app imports directly.
"""

from ledgerbridge.observability.context import current_request_id, delivery_scope, log_fields
from ledgerbridge.observability.logs import configure_logging
from ledgerbridge.observability.vendors import instrument

__all__ = ["configure_logging", "current_request_id", "delivery_scope", "instrument", "log_fields"]
