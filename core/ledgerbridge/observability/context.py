"""What the current task is working for: the request id, and the delivery (account, plugin, id) being run.

Kept in contextvars so every log line can carry them without being handed them: the webhook's request sets
the request id, the event stored from that request keeps it, and the dispatcher sets it again (with the
delivery) while it runs that event's delivery, so the vendor calls of the delivery log it too.
This module imports nothing of ledgerbridge: the store's records use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_request_id: ContextVar[str | None] = ContextVar("ledgerbridge_request_id", default=None)
#: (account id, plugin, delivery id) of the delivery the current task runs
_delivery: ContextVar[tuple[str, str, int] | None] = ContextVar("ledgerbridge_delivery", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> Any:
    """Set the request id of the current context; returns the token `reset_request_id` takes."""
    return _request_id.set(request_id)


def reset_request_id(token: Any) -> None:
    _request_id.reset(token)


@contextlib.contextmanager
def delivery_scope(request_id: str | None, account_id: str, plugin: str, delivery_id: int) -> Iterator[None]:
    """While a delivery runs: its event's request id and the delivery itself are in every log line."""
    request_token = _request_id.set(request_id)
    delivery_token = _delivery.set((account_id, plugin, delivery_id))
    try:
        yield
    finally:
        _delivery.reset(delivery_token)
        _request_id.reset(request_token)


def log_fields() -> dict[str, Any]:
    """The context's fields a log line carries (None where unknown)."""
    delivery = _delivery.get()
    if delivery is None:
        return {"request_id": _request_id.get(), "account": None, "plugin": None, "delivery_id": None}
    account, plugin, delivery_id = delivery
    return {"request_id": _request_id.get(), "account": account, "plugin": plugin, "delivery_id": delivery_id}
