"""Exceptions a hook implementation raises to tell the pipeline what to do with a delivery.

Any other exception counts as a transient failure: the delivery is retried with backoff and dead-lettered
once its attempts are used up.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """Base of the exceptions that steer a delivery."""


class RetryLater(DeliveryError):
    """Transient failure; retry after `retry_after` seconds when the vendor said so (429, 503)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ReauthorizationRequired(DeliveryError):
    """The connection's credentials are no longer accepted: pause this plugin's deliveries for the account.

    Nothing is dropped and no attempt is counted; deliveries resume when the plugin calls
    `AccountContext.resume()` (after the user reconnects).
    """


class PermanentFailure(DeliveryError):
    """Retrying cannot help (the vendor rejected the data): dead-letter now, with this message."""


class Skip(DeliveryError):
    """Nothing to do for this event (for example an invoice created before the connection); recorded."""


class ExternalIdTaken(ValueError):
    """A vendor identity (a company, a location) is already bound to another account: one account each."""
