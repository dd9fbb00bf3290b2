"""The sandbox's configuration: registered apps, organisations made at start, Xero's limits."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AppRegistration:
    """A Xero app: its client credentials, redirect URIs and its webhook (URL and signing key)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)
    webhook_url: str | None = None
    webhook_key: str = "sandbox-webhook-key"
    name: str = "ledgerbridge"


@dataclass
class SandboxConfig:
    base_url: str
    apps: list[AppRegistration] = field(default_factory=list)
    calls_per_minute: int = 60  # per tenant per app
    concurrent_calls: int = 5  # per tenant per app
    calls_per_day: int = 5000  # per tenant per app
    app_calls_per_minute: int = 10_000  # per app across every tenant
    minute_seconds: float = 60.0  # tests shrink the minute
    state_file: str | None = None
