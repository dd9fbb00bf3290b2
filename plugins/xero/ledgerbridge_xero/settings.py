"""Per-account settings (the card's choices) and process-wide configuration read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import msgspec

ENV = "LEDGERBRIDGE_XERO_"
# The app the built-in sandbox registers for this server when no Xero credentials are configured.
SANDBOX_CLIENT_ID = "ledgerbridge-xero-sandbox-app"
SANDBOX_CLIENT_SECRET = "ledgerbridge-xero-sandbox-secret"
SANDBOX_WEBHOOK_KEY = "ledgerbridge-xero-sandbox-webhook-key"
SCOPES = "openid profile email offline_access accounting.transactions accounting.contacts accounting.settings"


class XeroSettings(msgspec.Struct, kw_only=True):
    """What the account's admin can change on the Xero card."""

    payments_as: Literal["bank_transaction", "invoice_and_payment"] = "bank_transaction"
    bank_account_code: str = ""  # empty: the organisation's first active bank account
    sales_account_code: str = "200"


@dataclass(frozen=True)
class Endpoints:
    authorize: str
    token: str
    revocation: str
    connections: str
    api: str


PRODUCTION = Endpoints(
    authorize="https://login.xero.com/identity/connect/authorize",
    token="https://identity.xero.com/connect/token",
    revocation="https://identity.xero.com/connect/revocation",
    connections="https://api.xero.com/connections",
    api="https://api.xero.com/api.xro/2.0",
)


def sandbox_endpoints(url: str) -> Endpoints:
    return Endpoints(
        authorize=f"{url}/identity/connect/authorize",
        token=f"{url}/connect/token",
        revocation=f"{url}/connect/revocation",
        connections=f"{url}/connections",
        api=f"{url}/api.xro/2.0",
    )


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str
    webhook_key: str
    endpoints: Endpoints


@dataclass(frozen=True)
class Limits:
    """Xero's per-tenant limits; `time_scale` > 1 shrinks the minute for a time-scaled sandbox."""

    calls_per_minute: int = 60
    concurrent: int = 5
    time_scale: float = 1.0
    max_attempts: int = 5
    longest_wait: float = 10.0  # a Retry-After above this hands the delivery back to the pipeline
    backoff_base: float = 0.5
    backoff_cap: float = 10.0
    timeout: float = 30.0

    @property
    def minute(self) -> float:
        return 60.0 / self.time_scale


def has_xero_credentials(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(ENV + "CLIENT_ID") and env.get(ENV + "CLIENT_SECRET"))


def credentials_from_env(sandbox_url: str | None, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Xero credentials from LEDGERBRIDGE_XERO_*, else the mounted sandbox's default app, else None."""
    env = os.environ if environ is None else environ
    if has_xero_credentials(env):
        api_root = env.get(ENV + "SANDBOX_URL")  # point a real-credential setup at an emulator (tests)
        return Credentials(
            client_id=env[ENV + "CLIENT_ID"],
            client_secret=env[ENV + "CLIENT_SECRET"],
            webhook_key=env.get(ENV + "WEBHOOK_KEY", ""),
            endpoints=sandbox_endpoints(api_root.rstrip("/")) if api_root else PRODUCTION,
        )
    if sandbox_url is None:
        return None
    return Credentials(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_WEBHOOK_KEY, sandbox_endpoints(sandbox_url))


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    env = os.environ if environ is None else environ
    return Limits(
        calls_per_minute=int(env.get(ENV + "CALLS_PER_MINUTE", "60")),
        concurrent=int(env.get(ENV + "CONCURRENT", "5")),
        time_scale=float(env.get(ENV + "TIME_SCALE", "1")),
    )
