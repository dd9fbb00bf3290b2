"""Xero's JSON dates: `/Date(1573755038314+0000)/` for stamps, `YYYY-MM-DDT00:00:00` date strings."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_MSDATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def msdate(epoch_seconds: float) -> str:
    return f"/Date({int(epoch_seconds * 1000)}+0000)/"


def msdate_of_day(day: date) -> str:
    return msdate(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def parse_day(value: object) -> date | None:
    """A request's date: ISO `2024-01-31`, `2024-01-31T00:00:00` or `/Date(ms)/`; None when not a date."""
    if not isinstance(value, str) or not value:
        return None
    found = _MSDATE.match(value)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC).date()
    try:
        return datetime.fromisoformat(value[:19]).date() if "T" in value else date.fromisoformat(value)
    except ValueError:
        return None


def parse_http_date(value: str) -> float | None:
    """If-Modified-Since: Xero takes ISO 8601 (`2020-02-06T12:17:43.202-08:00`); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_utc(epoch_seconds: float) -> str:
    """Webhooks' eventDateUtc: `2017-06-21T01:15:39.902` (no offset, as Xero sends it)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
