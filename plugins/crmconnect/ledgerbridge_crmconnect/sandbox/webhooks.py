"""Webhook delivery: signed POSTs to the configured URL, retried only when the receiver answers 429."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from ledgerbridge_crmconnect.sandbox.signing import WebhookKeys
from ledgerbridge_crmconnect.sandbox.util import dumps, now_iso

Delivery = dict[str, Any]


class WebhookDispatcher:
    """Queues events, delivers them from one asyncio task, keeps an inspectable delivery log."""

    def __init__(
        self,
        keys: WebhookKeys,
        url_getter: Callable[[], str | None],
        retry_seconds: Callable[[], float],
        max_retries: int,
        bare: Callable[[str], bool] = lambda event_type: False,
    ) -> None:
        self.keys = keys
        self._bare = bare
        self._url = url_getter
        self._retry_seconds = retry_seconds
        self.max_retries = max_retries
        self.deliveries: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._pending: list[Delivery] = []  # events emitted before the worker started
        self._lock = threading.Lock()
        self._in_flight = 0

    # -- lifecycle -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def start(self) -> None:
        """Start the worker in the running loop (from the app lifespan, or lazily when mounted)."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue()
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self._worker = self._loop.create_task(self._run(), name="crmconnect-sandbox-webhooks")
        with self._lock:
            pending, self._pending = self._pending, []
        for delivery in pending:
            self._queue.put_nowait(delivery)

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, *self._retries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._worker = None
        self._retries.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- emitting ------------------------------------------------------------------------------------
    def emit(self, event_type: str, location_id: str, payload: dict[str, Any]) -> Delivery:
        """Queue one event; the body gets type, locationId, timestamp and webhookId beside the payload,
        unless the event is to be sent in its documented bare shape."""
        stamp, webhook_id = now_iso(), str(uuid.uuid4())
        if self._bare(event_type):
            body = dict(payload)
        else:
            body = {"type": event_type, "locationId": location_id, **payload, "timestamp": stamp}
            body["webhookId"] = webhook_id
        delivery: Delivery = {
            "webhookId": webhook_id,
            "type": event_type,
            "locationId": location_id,
            "body": body,
            "url": None,
            "state": "queued",
            "attempts": [],
            "createdAt": stamp,
        }
        with self._lock:
            self.deliveries.append(delivery)
            self._in_flight += 1
        self._enqueue(delivery)
        return delivery

    def _enqueue(self, delivery: Delivery) -> None:
        if self._queue is None or self._loop is None or not self.running:
            with self._lock:
                self._pending.append(delivery)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._queue.put_nowait(delivery)
        else:  # emitted from another thread (a test acting on the engine directly)
            self._loop.call_soon_threadsafe(self._queue.put_nowait, delivery)

    # -- delivering ----------------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            await self._attempt(delivery)

    async def _attempt(self, delivery: Delivery) -> None:
        url = self._url()
        delivery["url"] = url
        if not url:
            self._finish(delivery, "no_webhook_url")
            return
        raw = dumps(delivery["body"])
        headers = {
            "content-type": "application/json",
            "x-wh-signature": self.keys.sign_rsa(raw),
            "x-ghl-signature": self.keys.sign_ed25519(raw),
            "user-agent": "ledgerbridge-crmconnect-sandbox",
        }
        attempt: dict[str, Any] = {"at": now_iso(), "status": None, "error": None}
        delivery["attempts"].append(attempt)
        assert self._client is not None
        try:
            response = await self._client.post(url, content=raw, headers=headers)
            attempt["status"] = response.status_code
        except httpx.HTTPError as exc:
            attempt["error"] = f"{type(exc).__name__}: {exc}"
            self._finish(delivery, "failed")  # only a 429 answer is retried, as HighLevel does
            return
        if response.status_code == 429 and len(delivery["attempts"]) <= self.max_retries:
            delivery["state"] = "retry_scheduled"
            task = asyncio.get_running_loop().create_task(self._retry_later(delivery))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        elif 200 <= response.status_code < 300:
            self._finish(delivery, "delivered")
        else:
            self._finish(delivery, "failed")

    async def _retry_later(self, delivery: Delivery) -> None:
        await asyncio.sleep(self._retry_seconds())
        await self._attempt(delivery)

    def _finish(self, delivery: Delivery, state: str) -> None:
        with self._lock:
            delivery["state"] = state
            self._in_flight -= 1

    # -- inspection ----------------------------------------------------------------------------------
    def log(self, event_type: str | None = None) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if event_type is None or d["type"] == event_type]

    def clear(self) -> None:
        with self._lock:
            self.deliveries = [d for d in self.deliveries if d["state"] in ("queued", "retry_scheduled")]

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every emitted event reached a final state (for tests and demos)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._lock:
                if self._in_flight == 0:
                    return
            if loop.time() > deadline:
                raise TimeoutError("webhook deliveries still pending")
            await asyncio.sleep(0.01)
