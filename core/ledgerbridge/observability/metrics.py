"""The server's Prometheus metrics: this process's counters, and the store's backlog read at scrape time.

Counters and histograms are per process (each replica serves its own; Prometheus adds them up). The gauges
read from the store at scrape time are the same whichever replica is scraped. Labels are plugin and vendor
names, outcomes and status codes only: never an account, a name, an e-mail or a secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

if TYPE_CHECKING:
    from ledgerbridge.store.base import Backlog

PREFIX = "ledgerbridge"

#: seconds, from a few milliseconds (a warm worker) to an hour (a backlog, or a long Retry-After)
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: seconds a vendor takes to answer
VENDOR_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

WEBHOOKS_RECEIVED = Counter(
    f"{PREFIX}_webhooks_received",
    "Webhook requests received, accepted or not, by plugin",
    ["plugin"],
)
WEBHOOKS_REFUSED = Counter(
    f"{PREFIX}_webhooks_refused",
    "Webhook requests answered 4xx/5xx, by plugin and reason class (unauthorized, malformed, too_large, "
    "not_found, conflict, throttled, error, other)",
    ["plugin", "reason"],
)
CLAIM_LAG = Histogram(
    f"{PREFIX}_claim_lag_seconds",
    "How long a delivery waited between becoming due (ready_at) and a worker claiming it",
    ["plugin"],
    buckets=LAG_BUCKETS,
)
DELIVERY_SECONDS = Histogram(
    f"{PREFIX}_delivery_seconds",
    "Time a plugin's hook took to run one delivery attempt",
    ["plugin"],
    buckets=LAG_BUCKETS,
)
DELIVERIES_FINISHED = Counter(
    f"{PREFIX}_deliveries_finished",
    "Deliveries finished by this process, by plugin and outcome (done, skipped, dead)",
    ["plugin", "outcome"],
)
DELIVERY_RETRIES = Counter(
    f"{PREFIX}_delivery_retries",
    "Failed delivery attempts scheduled to be tried again, by plugin",
    ["plugin"],
)
DELIVERY_PAUSES = Counter(
    f"{PREFIX}_delivery_pauses",
    "Deliveries that paused their plugin for their account (reauthorization required), by plugin",
    ["plugin"],
)
VENDOR_REQUESTS = Counter(
    f"{PREFIX}_vendor_requests",
    "HTTP requests to a vendor answered, by vendor and status code",
    ["vendor", "status"],
)
VENDOR_THROTTLED = Counter(
    f"{PREFIX}_vendor_throttled",
    "Vendor answers 429 Too Many Requests, by vendor",
    ["vendor"],
)
VENDOR_SECONDS = Histogram(
    f"{PREFIX}_vendor_request_seconds",
    "Time from sending a request to a vendor to its response headers, by vendor",
    ["vendor"],
    buckets=VENDOR_BUCKETS,
)

_REFUSAL_REASONS = {
    400: "malformed",
    401: "unauthorized",
    403: "unauthorized",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    415: "malformed",
    422: "malformed",
    429: "throttled",
}


_received: dict[str, Any] = {}  # each plugin's child counter: resolving labels per webhook costs a lock


def count_webhook(plugin: str, status: int) -> None:
    received = _received.get(plugin)
    if received is None:
        received = _received[plugin] = WEBHOOKS_RECEIVED.labels(plugin)
    received.inc()
    if status >= 400:
        reason = _REFUSAL_REASONS.get(status, "error" if status >= 500 else "other")
        WEBHOOKS_REFUSED.labels(plugin, reason).inc()


class _BacklogCollector:
    """The store's backlog, as read for this scrape (None when the store could not be read)."""

    def __init__(self, backlog: Backlog | None, oldest_due_age: float | None) -> None:
        self._backlog = backlog
        self._oldest_due_age = oldest_due_age

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"{PREFIX}_store_up", "1 when this scrape could read the store, else 0")
        up.add_metric([], 0.0 if self._backlog is None else 1.0)
        yield up
        if self._backlog is None:
            return
        deliveries = GaugeMetricFamily(
            f"{PREFIX}_deliveries",
            "Deliveries not finished, in the store shared by every replica: pending (waiting for a worker, "
            "behind an older one of their object, or for a retry) and leased (held by a worker)",
            labels=["state"],
        )
        deliveries.add_metric(["pending"], self._backlog.pending)
        deliveries.add_metric(["leased"], self._backlog.leased)
        yield deliveries
        oldest = GaugeMetricFamily(
            f"{PREFIX}_oldest_due_delivery_age_seconds",
            "How long the longest-waiting due delivery has been claimable without being claimed (0 when none is)",
        )
        oldest.add_metric([], self._oldest_due_age or 0.0)
        yield oldest
        paused = GaugeMetricFamily(
            f"{PREFIX}_plugins_paused",
            "Accounts whose plugin is paused until the user reconnects it, by plugin",
            labels=["plugin"],
        )
        for plugin, count in sorted(self._backlog.paused.items()):
            paused.add_metric([plugin], count)
        yield paused


def exposition(backlog: Backlog | None, next_due_at: float | None, now: float) -> bytes:
    """The text format of this process's metrics and the store's backlog (None: the store is unreachable)."""
    oldest_due_age = max(now - next_due_at, 0.0) if next_due_at is not None else None
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_BacklogCollector(backlog, oldest_due_age))
    return generate_latest(REGISTRY) + generate_latest(scrape)
