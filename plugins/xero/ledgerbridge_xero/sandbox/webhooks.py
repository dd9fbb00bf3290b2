"""Signed webhooks: `x-xero-signature` = base64(HMAC-SHA256(webhook key, raw body)). Before sending any event
Xero checks "intent to receive": a correctly signed empty batch must get 200 and a wrongly signed one 401;
until the check passes, nothing is delivered. Failed deliveries are retried with backoff."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import httpx

from .config import AppRegistration

logger = logging.getLogger("ledgerbridge.sandbox.xero.webhooks")
RETRY_DELAYS = (0.2, 1.0, 5.0, 30.0)


def sign(key: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def verify(key: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, body), signature or "")


def _entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


@dataclass
class Delivery:
    body: bytes
    attempts: int = 0
    status: int | None = None
    delivered: bool = False


@dataclass
class Subscription:
    app: AppRegistration
    status: str = "PENDING"  # PENDING until intent to receive passes, then OK; FAILED after a failed check
    sequence: int = 0
    queue: list[dict[str, Any]] = field(default_factory=list)
    history: list[Delivery] = field(default_factory=list)


class Dispatcher:
    def __init__(self, apps: list[AppRegistration]) -> None:
        self.subscriptions = {a.client_id: Subscription(a) for a in apps if a.webhook_url}
        self.wake = asyncio.Event()
        self.busy = False
        self.client: httpx.AsyncClient | None = None

    def enqueue(self, client_id: str, event: dict[str, Any]) -> None:
        subscription = self.subscriptions.get(client_id)
        if subscription is not None:
            subscription.queue.append(event)
            self.wake.set()

    @property
    def idle(self) -> bool:
        return not self.busy and not any(s.queue for s in self.subscriptions.values() if s.status != "FAILED")

    async def _post(self, subscription: Subscription, body: bytes, signature: str) -> int:
        assert self.client is not None and subscription.app.webhook_url
        try:
            response = await self.client.post(
                subscription.app.webhook_url,
                content=body,
                headers={"x-xero-signature": signature, "content-type": "application/json; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            logger.info("webhook to %s failed: %s", subscription.app.webhook_url, exc)
            return 0
        return response.status_code

    async def intent_to_receive(self, subscription: Subscription) -> bool:
        """Xero's handshake: an empty batch signed right (expects 200), then signed wrong (expects 401)."""
        body = json.dumps(
            {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": _entropy()}
        ).encode()
        good = await self._post(subscription, body, sign(subscription.app.webhook_key, body))
        bad = await self._post(subscription, body, sign(subscription.app.webhook_key + "-wrong", body))
        subscription.status = "OK" if (good, bad) == (200, 401) else "FAILED"
        if subscription.status == "FAILED":
            logger.warning("intent to receive failed for %s: %s and %s", subscription.app.webhook_url, good, bad)
        return subscription.status == "OK"

    async def _flush(self, subscription: Subscription) -> None:
        if subscription.status == "PENDING" and not await self.intent_to_receive(subscription):
            return
        if subscription.status != "OK" or not subscription.queue:
            return
        events, subscription.queue = subscription.queue, []
        first = subscription.sequence + 1
        subscription.sequence += len(events)
        body = json.dumps(
            {
                "events": events,
                "firstEventSequence": first,
                "lastEventSequence": subscription.sequence,
                "entropy": _entropy(),
            }
        ).encode()
        delivery = Delivery(body)
        subscription.history.append(delivery)
        for delay in (*RETRY_DELAYS, None):
            delivery.attempts += 1
            delivery.status = await self._post(subscription, body, sign(subscription.app.webhook_key, body))
            if delivery.status == 200:
                delivery.delivered = True
                return
            if delay is None:
                return
            await asyncio.sleep(delay)

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            self.client = client
            while True:
                await self.wake.wait()
                self.wake.clear()
                self.busy = True
                try:
                    await asyncio.sleep(0.05)  # Xero batches what happened together
                    for subscription in self.subscriptions.values():
                        try:
                            await self._flush(subscription)
                        except Exception:
                            logger.exception("webhook delivery to %s failed", subscription.app.webhook_url)
                finally:
                    self.busy = False
