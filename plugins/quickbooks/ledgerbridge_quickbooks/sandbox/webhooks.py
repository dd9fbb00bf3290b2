"""Webhook bodies (legacy and CloudEvents), the intuit-signature, and the ordered, retrying dispatcher."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .clock import Clock, iso
from .config import AppRegistration
from .state import Change

# Seconds before each attempt; after the list, every 6 h. Divided by time_scale.
SCHEDULE = (0, 10, 20, 30, 300, 1200, 7200, 14400, 21600)
EVERY_AFTER = 21600
# Intuit groups changes made close together; the sandbox waits this long (scaled) before sending.
GATHER_SECONDS = 0.5
MAX_EVENTS = 100
HISTORY_KEEP = 1000  # deliveries kept for inspection through the control API
PAST = {"Create": "created", "Update": "updated", "Delete": "deleted", "Merge": "merged", "Void": "voided"}


def sign(verifier_token: str, body: bytes) -> str:
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(verifier_token: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute the HMAC of the raw body and compare in constant time."""
    return hmac.compare_digest(sign(verifier_token, body), signature.strip())


def legacy_body(events: list[tuple[str, Change]]) -> bytes:
    by_realm: dict[str, list[dict[str, str]]] = {}
    for realm, change in events:
        by_realm.setdefault(realm, []).append(
            {"name": change.entity, "id": change.entity_id, "operation": change.operation, "lastUpdated": change.at}
        )
    notifications = [{"realmId": realm, "dataChangeEvent": {"entities": ents}} for realm, ents in by_realm.items()]
    return json.dumps({"eventNotifications": notifications}, separators=(",", ":")).encode()


def cloudevents_body(events: list[tuple[str, Change]], source: str) -> bytes:
    out = []
    for realm, change in events:
        out.append({
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": source,
            "type": f"qbo.{change.entity.lower()}.{PAST.get(change.operation, 'updated')}.v1",
            "datacontenttype": "application/json", "time": change.at,
            "intuitentityid": change.entity_id, "intuitaccountid": realm,
        })  # fmt: skip
    return json.dumps(out, separators=(",", ":")).encode()


@dataclass
class Attempt:
    at: str
    status: int | None
    error: str | None


@dataclass
class Delivery:
    id: str
    client_id: str
    url: str
    body: bytes
    signature: str
    events: int
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    next_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "client_id": self.client_id, "url": self.url, "body": self.body.decode(),
            "signature": self.signature, "events": self.events, "delivered": self.delivered,
            "attempts": [vars(a) for a in self.attempts],
        }  # fmt: skip


@dataclass
class _AppQueue:
    pending: deque[tuple[str, Change]] = field(default_factory=deque)
    current: Delivery | None = None
    first_pending_at: float = 0.0


class Dispatcher:
    """One queue per app: a delivery is retried on Intuit's schedule and later events wait for its 200."""

    def __init__(self, clock: Clock, time_scale: float, apps: Callable[[], dict[str, AppRegistration]],
                 source: Callable[[], str]) -> None:  # fmt: skip
        self.clock = clock
        self.time_scale = time_scale
        self.apps = apps
        self.source = source
        self.queues: dict[str, _AppQueue] = {}
        self.history: list[Delivery] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enqueue(self, client_id: str, realm: str, change: Change) -> None:
        queue = self.queues.setdefault(client_id, _AppQueue())
        if not queue.pending:
            queue.first_pending_at = self.clock.time()
        queue.pending.append((realm, change))
        self.wake()

    def wake(self) -> None:
        """Safe from any thread: tests drive the engine from outside the server's loop."""
        if self._loop is None or self._wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wake.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    def _delay(self, attempt_number: int) -> float:
        seconds = SCHEDULE[attempt_number] if attempt_number < len(SCHEDULE) else EVERY_AFTER
        return seconds / self.time_scale

    def _form(self, client_id: str, queue: _AppQueue, app: AppRegistration) -> Delivery | None:
        if not queue.pending or not app.webhook_url:
            return None
        if self.clock.time() < queue.first_pending_at + GATHER_SECONDS / self.time_scale:
            return None
        events = [queue.pending.popleft() for _ in range(min(MAX_EVENTS, len(queue.pending)))]
        if queue.pending:
            queue.first_pending_at = self.clock.time()
        cloud = app.webhook_format == "cloudevents"
        body = cloudevents_body(events, self.source()) if cloud else legacy_body(events)
        delivery = Delivery(str(uuid.uuid4()), client_id, app.webhook_url, body, sign(app.verifier_token, body),
                            len(events), next_at=self.clock.time() + self._delay(0))  # fmt: skip
        self.history.append(delivery)
        del self.history[:-HISTORY_KEEP]
        return delivery

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        status: int | None = None
        error: str | None = None
        try:
            response = await client.post(delivery.url, content=delivery.body, headers={
                "content-type": "application/json", "intuit-signature": delivery.signature,
                "user-agent": "ledgerbridge-quickbooks-sandbox",
            })  # fmt: skip
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivery.attempts.append(Attempt(iso(self.clock.now()), status, error))
        if status == 200:
            delivery.delivered = True
        else:
            delivery.next_at = self.clock.time() + self._delay(len(delivery.attempts))

    async def step(self, client: httpx.AsyncClient) -> float | None:
        """Send whatever is due; return seconds until the next thing is due (None: nothing pending)."""
        apps = self.apps()
        due_in: list[float] = []
        for client_id, queue in self.queues.items():
            app = apps.get(client_id)
            if app is None:
                continue
            if queue.current is None:
                queue.current = self._form(client_id, queue, app)
                if queue.current is None and queue.pending and app.webhook_url:
                    due_in.append(queue.first_pending_at + GATHER_SECONDS / self.time_scale - self.clock.time())
            current = queue.current
            if current is None:
                continue
            if self.clock.time() >= current.next_at:
                await self._attempt(client, current)
                if current.delivered:
                    queue.current = None
                due_in.append(0.0)
            else:
                due_in.append(current.next_at - self.clock.time())
        return max(0.0, min(due_in)) if due_in else None

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        # Intuit expects the endpoint to answer within 3 s.
        async with httpx.AsyncClient(timeout=3.0) as client:
            while True:
                # Clear before stepping so a change enqueued during the step is never missed.
                self._wake.clear()
                wait = await self.step(client)
                if wait == 0.0:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
