"""Configuration of the QuickBooks Online sandbox (what `ledgerbridge serve` and tests pass in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

WebhookFormat = Literal["legacy", "cloudevents"]


@dataclass
class AppRegistration:
    """An Intuit developer app: OAuth client credentials plus its webhook subscription."""

    client_id: str
    client_secret: str
    redirect_uris: list[str] = field(default_factory=list)
    verifier_token: str = "verifier-token"
    webhook_url: str | None = None
    webhook_format: WebhookFormat = "legacy"


@dataclass
class SandboxConfig:
    """Everything the sandbox needs; `base_url` includes any mount prefix and builds every emitted URL."""

    base_url: str = "http://127.0.0.1:8000"
    apps: list[AppRegistration] = field(default_factory=list)
    requests_per_minute: int = 500
    max_in_flight: int = 10
    #: batch requests per minute per company (Intuit: 120 since 2025-10-31), beside the requests per minute
    batches_per_minute: int = 120
    time_scale: float = 1.0
    access_token_ttl: int = 3600
    state_file: str | None = None
    seed: bool = True
    #: how long a `requestid`'s reply is replayed; after it the same requestid performs the write again,
    #: as at Intuit (whose window is undocumented and short: 48 h is as kind as the sandbox may be)
    requestid_ttl_seconds: float = 48 * 3600
