"""The vendor-client kit: what every plugin's API client is made of (see docs/plugins.md, "Writing a vendor
client"). A plugin supplies its URLs, headers, the classification of its vendor's answers into its own typed
errors, and its entity calls; the kit does the sending, the short retries, the token refresh and the limits."""

from ledgerbridge.vendor.client import (
    SAFE_METHODS,
    Classifier,
    TokenRejected,
    TransportFailure,
    VendorApi,
    VendorClient,
    VendorRules,
    bearer,
)
from ledgerbridge.vendor.limiter import AdaptiveLimiter, Budget, Held, Limiter, Limiters, LocalLimiter
from ledgerbridge.vendor.policy import NO_RETRIES, RetryPolicy
from ledgerbridge.vendor.retry_after import parse_retry_after
from ledgerbridge.vendor.tokens import (
    AccountTokens,
    Grant,
    GrantRefused,
    GrantStore,
    SecretGrant,
    StaticToken,
    TokenManager,
    TokenSource,
)

__all__ = [
    "NO_RETRIES",
    "SAFE_METHODS",
    "AccountTokens",
    "AdaptiveLimiter",
    "Budget",
    "Classifier",
    "Grant",
    "GrantRefused",
    "GrantStore",
    "Held",
    "Limiter",
    "Limiters",
    "LocalLimiter",
    "RetryPolicy",
    "SecretGrant",
    "StaticToken",
    "TokenManager",
    "TokenRejected",
    "TokenSource",
    "TransportFailure",
    "VendorApi",
    "VendorClient",
    "VendorRules",
    "bearer",
    "parse_retry_after",
]
