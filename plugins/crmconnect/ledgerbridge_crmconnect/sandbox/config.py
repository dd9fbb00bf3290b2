"""Configuration of the CRM Connect sandbox (a local HighLevel API v2 emulator)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LocationSeed:
    """A sub-account to create at start-up, with its Private Integration Token."""

    id: str
    name: str = "Sandbox Location"
    country: str = "US"
    token: str | None = None
    company_id: str = "sandboxCompany000001"
    currency: str = "USD"


@dataclass
class OAuthAppSeed:
    """A marketplace app allowed to run the authorization-code flow."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class SandboxConfig:
    base_url: str = "http://127.0.0.1:8000"
    webhook_url: str | None = None
    rate_limit_requests: int = 100
    rate_limit_interval_seconds: float = 10.0
    daily_limit: int = 200_000
    time_scale: float = 1.0
    locations: list[LocationSeed] = field(default_factory=list)
    oauth_apps: list[OAuthAppSeed] = field(default_factory=list)
    webhook_keys_dir: str | None = None
    state_file: str | None = None
    # HighLevel signs with RSA-4096; 2048 keeps start-up fast and verifies the same way.
    webhook_rsa_bits: int = 2048
    webhook_retry_seconds: float = 600.0
    webhook_max_retries: int = 6
    access_token_seconds: int = 86_399
    #: send invoice events exactly as HighLevel documents them (the bare invoice: no type, locationId,
    #: timestamp or webhookId; InvoiceDelete with status "delete") instead of the richer envelope
    documented_invoice_webhooks: bool = False

    def scaled(self, seconds: float) -> float:
        """A wait divided by time_scale (time_scale > 1 makes the sandbox faster)."""
        return seconds / self.time_scale if self.time_scale > 0 else seconds
