"""Per-account settings (the card's toggle) and process-wide configuration read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

ENV = "LEDGERBRIDGE_QBO_"
PRODUCTION_API = "https://quickbooks.api.intuit.com"
SANDBOX_API = "https://sandbox-quickbooks.api.intuit.com"
# The app the built-in sandbox registers for this server when no Intuit credentials are configured.
SANDBOX_CLIENT_ID = "ledgerbridge-sandbox-app"
SANDBOX_CLIENT_SECRET = "ledgerbridge-sandbox-secret"
SANDBOX_VERIFIER_TOKEN = "ledgerbridge-sandbox-verifier"
SANDBOX_DISCOVERY_PATH = "/.well-known/openid_configuration"


ItemMapping = Literal["name", "sku", "default"]
AccountName = Annotated[str, msgspec.Meta(max_length=100)]


class QuickBooksSettings(msgspec.Struct, kw_only=True):
    """What the account's admin can change on the integration card (review requests are the core's)."""

    #: where sales receipts' money lands, and refunds' money leaves: an account's name (or Id), a Bank or
    #: Other Current Asset account; "" is QuickBooks' default, Undeposited Funds
    deposit_account: AccountName = ""
    #: the Income account of the items the product creates; "" is the company's service income account
    income_account: AccountName = ""
    #: how a CRM product becomes a QuickBooks item: by its name (created when missing), by SKU (the item
    #: whose Sku is the CRM product id, else by name), or every line on `default_item`
    item_mapping: ItemMapping = "name"
    default_item: AccountName = "Services"


@dataclass(frozen=True)
class Credentials:
    """An Intuit app: where its OAuth endpoints are (environment) and where the Accounting API lives."""

    client_id: str
    client_secret: str
    environment: str  # "sandbox", "production" or a discovery-document URL (how intuit-oauth is pointed)
    api_url: str
    verifier_token: str


@dataclass(frozen=True)
class Limits:
    """Intuit's per-realm limits; `time_scale` > 1 shrinks the minute for a time-scaled sandbox."""

    requests_per_minute: int = 500
    max_in_flight: int = 10
    time_scale: float = 1.0
    max_attempts: int = 6
    backoff_base: float = 0.25
    backoff_cap: float = 20.0
    timeout: float = 30.0

    @property
    def window_seconds(self) -> float:
        return 60.0 / self.time_scale


def has_intuit_credentials(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(ENV + "CLIENT_ID") and env.get(ENV + "CLIENT_SECRET"))


def credentials_from_env(sandbox_url: str | None, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Intuit credentials from LEDGERBRIDGE_QBO_*, else the mounted sandbox's default app, else None."""
    env = os.environ if environ is None else environ
    if has_intuit_credentials(env):
        environment = env.get(ENV + "ENVIRONMENT", "sandbox")
        return Credentials(
            client_id=env[ENV + "CLIENT_ID"],
            client_secret=env[ENV + "CLIENT_SECRET"],
            environment=environment,
            api_url=(env.get(ENV + "API_URL") or _api_url_for(environment)).rstrip("/"),
            verifier_token=env.get(ENV + "VERIFIER_TOKEN", ""),
        )
    if sandbox_url is None:
        return None
    return Credentials(
        client_id=SANDBOX_CLIENT_ID,
        client_secret=SANDBOX_CLIENT_SECRET,
        environment=sandbox_url + SANDBOX_DISCOVERY_PATH,
        api_url=sandbox_url,
        verifier_token=SANDBOX_VERIFIER_TOKEN,
    )


def _api_url_for(environment: str) -> str:
    if environment.lower() in ("production", "prod"):
        return PRODUCTION_API
    if environment.lower() in ("sandbox", "sand"):
        return SANDBOX_API
    # a discovery URL of an emulator: its API lives at the same origin prefix
    return environment.split("/.well-known/")[0]


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    env = os.environ if environ is None else environ
    return Limits(
        requests_per_minute=int(env.get(ENV + "REQUESTS_PER_MINUTE", "500")),
        max_in_flight=int(env.get(ENV + "MAX_IN_FLIGHT", "10")),
        time_scale=float(env.get(ENV + "TIME_SCALE", "1")),
    )
