"""`GET /metrics`: Prometheus' text format, for the admin token, or for anyone when the operator opts in."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ledgerbridge.observability.metrics import exposition
from ledgerbridge.store.base import Backlog
from ledgerbridge.web.auth import require_admin

logger = logging.getLogger("ledgerbridge.metrics")


async def metrics(request: Request) -> Response:
    """The admin bearer token is required unless `LEDGERBRIDGE_METRICS_PUBLIC=1` (a scraper on a private network
    that cannot hold a token). Either way nothing in it names an account or holds a secret."""
    if not request.app.state.metrics_public:
        require_admin(request)
    runtime = request.app.state.runtime
    backlog: Backlog | None = None
    next_due_at: float | None = None
    try:
        backlog = await runtime.store.backlog()
        next_due_at = await runtime.store.next_due_at()
    except Exception as exc:  # the process's own counters are still worth serving while the store is down
        logger.warning("metrics: cannot read the store: %s", exc)
    return Response(exposition(backlog, next_due_at, runtime.clock()), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
