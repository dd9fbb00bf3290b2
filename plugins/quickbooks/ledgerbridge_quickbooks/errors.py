"""Typed QuickBooks errors. Each carries `details` (code, status, Intuit's transaction id) for the activity log."""

from __future__ import annotations

from typing import Any

from ledgerbridge import PermanentFailure, ReauthorizationRequired, RetryLater
from ledgerbridge.vendor import TokenRejected


class QuickBooksError(Exception):
    """Anything QuickBooks (or the way to it) answered that is not success."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        detail: str | None = None,
        element: str | None = None,
        intuit_tid: str | None = None,
    ) -> None:
        Exception.__init__(self, message)
        self.status = status
        self.code = code
        self.detail = detail
        self.element = element
        self.intuit_tid = intuit_tid

    @property
    def details(self) -> dict[str, Any]:
        found = {
            "status": self.status,
            "code": self.code,
            "element": self.element,
            "vendor_transaction_id": self.intuit_tid,
        }
        return {key: value for key, value in found.items() if value is not None}


class FaultError(QuickBooksError, PermanentFailure):  # type: ignore[misc, unused-ignore]
    """A ValidationFault (400): the data was refused; retrying the same request cannot help."""


class NotFoundError(FaultError):
    """610 Object Not Found."""


class InvalidReferenceError(FaultError):
    """2500 Invalid Reference Id: a linked customer or item is gone or inactive."""


class StaleObjectError(FaultError):
    """5010: the SyncToken sent is older than the object's."""


class DuplicateDocNumberError(FaultError):
    """6140 Duplicate Document Number."""


class DuplicateNameError(FaultError):
    """6240: DisplayName is already used by a customer, vendor or employee."""


class QueryRefusedError(FaultError):
    """4000/4001: the query could not be parsed or names a property that cannot be filtered."""


class AuthenticationError(QuickBooksError, TokenRejected):
    """401: the access token is missing, invalid or expired (the client refreshes it once and resends)."""


class AuthorizationError(QuickBooksError, PermanentFailure):  # type: ignore[misc, unused-ignore]
    """403: the token does not grant this company (or the scope is missing)."""


class ReauthorizationNeeded(QuickBooksError, ReauthorizationRequired):  # type: ignore[misc, unused-ignore]
    """The refresh token was refused (invalid_grant) or there is no connection: the user must reconnect."""


class RetryableError(QuickBooksError, RetryLater):  # type: ignore[misc, unused-ignore]
    """Throttled, overloaded or unreachable (after the client's short retries); the pipeline tries later."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        QuickBooksError.__init__(self, message, **kwargs)
        self.retry_after = retry_after


class ThrottledError(RetryableError):
    """429 ThrottleExceeded (code 3001), usually an XML body."""


class ServerError(RetryableError):
    """5xx."""


class TransportError(RetryableError):
    """Timeout or dropped connection: the request may or may not have been performed."""


FAULT_CLASSES: dict[str, type[FaultError]] = {
    "610": NotFoundError,
    "2500": InvalidReferenceError,
    "4000": QueryRefusedError,
    "4001": QueryRefusedError,
    "5010": StaleObjectError,
    "6140": DuplicateDocNumberError,
    "6240": DuplicateNameError,
}
