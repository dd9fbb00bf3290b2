"""Typed Xero errors; each carries `details` for the core's activity log."""

from __future__ import annotations

from typing import Any

from ledgerbridge import PermanentFailure, ReauthorizationRequired, RetryLater
from ledgerbridge.vendor import TokenRejected


class XeroError(Exception):
    def __init__(self, message: str, *, status: int | None = None, messages: tuple[str, ...] = ()) -> None:
        Exception.__init__(self, message)
        self.status = status
        self.messages = messages

    @property
    def details(self) -> dict[str, Any]:
        found: dict[str, Any] = {"status": self.status}
        if self.messages:
            found["validation_errors"] = list(self.messages)
        return {k: v for k, v in found.items() if v is not None}


class ValidationError(XeroError, PermanentFailure):  # type: ignore[misc, unused-ignore]
    """A 400 ValidationException: Xero refused the document; the same request cannot succeed."""

    def mentions(self, text: str) -> bool:
        return any(text.lower() in message.lower() for message in self.messages)


class NotFoundError(XeroError, PermanentFailure):  # type: ignore[misc, unused-ignore]
    """404: the document does not exist (deleted in Xero, or another tenant's)."""


class RateLimitedError(XeroError, RetryLater):  # type: ignore[misc, unused-ignore]
    """429: retried in the client when Retry-After is short, else the pipeline retries later."""

    def __init__(self, message: str, *, retry_after: float, problem: str | None = None) -> None:
        XeroError.__init__(self, message, status=429)
        self.retry_after = retry_after
        self.problem = problem


class UnavailableError(XeroError, RetryLater):  # type: ignore[misc, unused-ignore]
    """5xx or a transport failure that outlasted the client's short retries."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        XeroError.__init__(self, message, status=status)
        self.retry_after = None


class ReauthorizationNeeded(XeroError, ReauthorizationRequired):  # type: ignore[misc, unused-ignore]
    """No connection, a refused refresh token, or a tenant that is no longer connected."""


class TokenRefusedError(ReauthorizationNeeded, TokenRejected):
    """401: the client refreshes the token once and resends; a second 401 asks the user to reconnect."""
