"""The one `Retry-After` parser: delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait (never negative), or None when the header is missing or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT
        return None
    return max(0.0, when.timestamp() - now())
