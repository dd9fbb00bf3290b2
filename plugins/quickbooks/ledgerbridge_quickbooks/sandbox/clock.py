"""An injectable clock: real time plus an offset that tests and the control API can advance."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall and monotonic time shifted by `offset` seconds; `advance` moves both forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds


def iso(moment: datetime) -> str:
    """QBO timestamps carry an explicit offset; the sandbox reports UTC as `+00:00`."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def iso_ms(moment: datetime) -> str:
    """The `time` member of responses carries milliseconds."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime | None:
    """Parse an ISO date or date-time; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
