"""The durable event pipeline: intake (inbox), dispatcher (deliveries), scheduler (background tasks)."""

from ledgerbridge.pipeline.backoff import Backoff
from ledgerbridge.pipeline.dispatcher import Dispatcher
from ledgerbridge.pipeline.intake import Intake
from ledgerbridge.pipeline.scheduler import Scheduler

__all__ = ["Backoff", "Dispatcher", "Intake", "Scheduler"]
