"""The sandbox engine: state, keys, webhooks, limits and faults behind the HTTP layer."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from ledgerbridge_crmconnect.sandbox.config import LocationSeed, OAuthAppSeed, SandboxConfig
from ledgerbridge_crmconnect.sandbox.ratelimit import RateLimiter
from ledgerbridge_crmconnect.sandbox.signing import WebhookKeys
from ledgerbridge_crmconnect.sandbox.state import Record, SandboxState
from ledgerbridge_crmconnect.sandbox.util import ApiError, ghl_id, now_iso
from ledgerbridge_crmconnect.sandbox.webhooks import Delivery, WebhookDispatcher


@dataclass
class Faults:
    """Injected misbehaviour for API (not control) requests."""

    latency_seconds: float = 0.0
    error_count: int = 0
    error_status: int = 500

    def take_error(self) -> int | None:
        if self.error_count <= 0:
            return None
        self.error_count -= 1
        return self.error_status


class SandboxEngine:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.base_url = config.base_url.rstrip("/")
        self.webhook_url = config.webhook_url
        self.lock = threading.RLock()  # the control API may be driven from another thread
        if config.state_file and os.path.exists(config.state_file):
            self.state = SandboxState.load(config.state_file)
        else:
            self.state = SandboxState()
        self.oauth_apps: dict[str, OAuthAppSeed] = {app.client_id: app for app in config.oauth_apps}
        for seed in config.locations:
            if seed.id not in self.state.locations:
                self.add_location(seed)
        self.keys = WebhookKeys.load_or_create(config.webhook_keys_dir, config.webhook_rsa_bits)
        self.webhooks = WebhookDispatcher(
            self.keys,
            lambda: self.webhook_url,
            lambda: config.scaled(config.webhook_retry_seconds),
            config.webhook_max_retries,
            bare=lambda event_type: config.documented_invoice_webhooks and event_type.startswith("Invoice"),
        )
        self.limiter = RateLimiter(
            lambda: config.rate_limit_requests,
            lambda: config.scaled(config.rate_limit_interval_seconds),
            lambda: config.daily_limit,
        )
        self.faults = Faults()

    # -- lifecycle -----------------------------------------------------------------------------------
    def set_base_url(self, url: str) -> None:
        """Set the public URL once the port is known (it is only used for URLs the sandbox emits)."""
        self.base_url = url.rstrip("/")

    def ensure_started(self) -> None:
        """Start webhook delivery in the running loop; a mounted app gets no lifespan of its own."""
        if not self.webhooks.running:
            self.webhooks.start()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SandboxEngine]:
        self.ensure_started()
        try:
            yield self
        finally:
            await self.webhooks.stop()

    def save(self) -> None:
        if self.config.state_file:
            with self.lock:
                self.state.save(self.config.state_file)

    def reset(self) -> None:
        """Forget every contact, invoice, payment and token on purpose: back to the configured locations
        (with their tokens) and OAuth apps. The signing keys and the webhook log stay."""
        with self.lock:
            self.state = SandboxState()
            for seed in self.config.locations:
                self.add_location(seed)
            self.faults = Faults()
            self.limiter.reset()
            self.save()

    # -- locations -----------------------------------------------------------------------------------
    def add_location(self, seed: LocationSeed) -> Record:
        with self.lock:
            location = {
                "id": seed.id,
                "name": seed.name,
                "country": seed.country,
                "companyId": seed.company_id,
                "currency": seed.currency,
                "dateAdded": now_iso(),
            }
            self.state.locations[seed.id] = location
            token = seed.token or f"pit-{ghl_id()}"
            self.state.pit_tokens[token] = seed.id
            return {**location, "token": token}

    def location(self, location_id: str) -> Record:
        location = self.state.locations.get(location_id)
        if location is None:
            raise ApiError(400, f"Location {location_id} not found")
        return location

    # -- webhooks ------------------------------------------------------------------------------------
    def emit(self, event_type: str, location_id: str, payload: dict[str, Any]) -> Delivery:
        return self.webhooks.emit(event_type, location_id, payload)

    def public_keys(self) -> dict[str, str]:
        return self.keys.public()
