"""The sandbox's state: apps, identity, organisations, limits, idempotent replies and outgoing webhooks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .books import Organisation
from .config import AppRegistration, SandboxConfig
from .dates import iso_utc
from .identity import Identity
from .limits import Limits
from .webhooks import Dispatcher, Subscription

IDEMPOTENCY_SECONDS = 86400.0  # Xero keeps an Idempotency-Key's reply for a day


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Fault:
    """The next `count` Accounting API calls answer `status` (429 with `retry_after`); `after_commit` runs the
    call first and then answers the fault, as a dropped reply would."""

    status: int
    count: int
    retry_after: int = 1
    after_commit: bool = False


@dataclass
class Reply:
    status: int
    body: bytes
    fingerprint: str
    at: float


class Sandbox:
    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.identity = Identity(clock)
        self.limits = Limits(config, clock)
        self.dispatcher = Dispatcher(config.apps)
        self.organisations: dict[str, Organisation] = {}
        self.replies: dict[tuple[str, str, str], Reply] = {}
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []  # every Accounting API call, for tests and the control API
        self.add_organisation("Demo Company (US)", currency="USD", country="US")
        self.add_organisation("Demo Company (UK)", currency="GBP", country="GB")

    def take_fault(self) -> Fault | None:
        if not self.faults:
            return None
        fault = self.faults[0]
        fault.count -= 1
        if fault.count <= 0:
            self.faults.pop(0)
        return fault

    def app(self, client_id: str) -> AppRegistration | None:
        return next((a for a in self.config.apps if a.client_id == client_id), None)

    def add_app(self, app: AppRegistration) -> None:
        self.config.apps.append(app)
        if app.webhook_url:
            self.dispatcher.subscriptions.setdefault(app.client_id, Subscription(app))

    def add_organisation(self, name: str, *, currency: str = "USD", country: str = "US") -> Organisation:
        organisation = Organisation(str(uuid.uuid4()), name, currency, country, clock=self.clock)
        self.organisations[organisation.tenant_id] = organisation
        return organisation

    def organisation(self, tenant_id: str) -> Organisation | None:
        return self.organisations.get(tenant_id.lower())

    def by_name(self, name: str) -> Organisation:
        return next(o for o in self.organisations.values() if o.name == name)

    def replay(self, client_id: str, tenant_id: str, key: str) -> Reply | None:
        found = self.replies.get((client_id, tenant_id, key))
        if found is not None and found.at + IDEMPOTENCY_SECONDS < self.clock():
            del self.replies[(client_id, tenant_id, key)]
            return None
        return found

    def remember(self, client_id: str, tenant_id: str, key: str, reply: Reply) -> None:
        self.replies[(client_id, tenant_id, key)] = reply

    def flush_events(self, organisation: Organisation) -> None:
        """Turn the organisation's recorded changes into webhook events for every app connected to it."""
        events, organisation.events = organisation.events, []
        if not events:
            return
        # an app hears of what happened after it was connected to the organisation, never before
        since: dict[str, float] = {}
        for connection in self.identity.connections.values():
            if connection.tenant_id == organisation.tenant_id:
                since[connection.client_id] = min(
                    since.get(connection.client_id, connection.created), connection.created
                )
        plural = {"CONTACT": "Contacts", "INVOICE": "Invoices"}
        api = f"{self.config.base_url}/api.xro/2.0"
        for client_id, connected_at in since.items():
            for event in events:
                if event.at < connected_at:
                    continue
                self.dispatcher.enqueue(
                    client_id,
                    {
                        "resourceUrl": f"{api}/{plural[event.category]}/{event.resource_id}",
                        "resourceId": event.resource_id,
                        "eventDateUtc": iso_utc(event.at),
                        "eventType": event.kind,
                        "eventCategory": event.category,
                        "tenantId": organisation.tenant_id,
                        "tenantType": "ORGANISATION",
                    },
                )
