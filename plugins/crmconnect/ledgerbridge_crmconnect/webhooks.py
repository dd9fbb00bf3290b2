"""Webhook intake: verify the signature, check freshness, find the account, persist, then acknowledge.

HighLevel retries a delivery only when the receiver answers 429, so every refusal here is final except the
one for "could not persist". Status choices (see docs/crmconnect.md):
- 401: no valid `x-ghl-signature` (Ed25519) or `x-wh-signature` (RSA). Nothing is stored.
- 400: malformed JSON, or a `timestamp` more than the allowed age from now (a replay).
- 200 `ignored`: an event type the plugin does not use, or a location no account is connected to
  (HighLevel would drop it on any answer; 200 keeps its delivery dashboard clean).
- 200 `stored` / `duplicate`: committed to the inbox (a repeated `webhookId` is one event).
- 200 `applied`: a contact event, written to the contact directory (`directory.py`) before the answer.
- 429: the inbox write failed; HighLevel retries, and the retry is let through the freshness check.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from ledgerbridge import AccountContext, PluginContext
from ledgerbridge.cache import TtlCache
from ledgerbridge.web import json_error, parse_json, read_body
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ledgerbridge_crmconnect import directory
from ledgerbridge_crmconnect.connection import Connections, Resolved, resolve
from ledgerbridge_crmconnect.wire import WebhookEnvelope, parse_datetime

logger = logging.getLogger("ledgerbridge.plugins.crmconnect.webhooks")

# HighLevel's published x-wh-signature key (docs/oauth/WebhookAuthentication.md).
HIGHLEVEL_RSA_PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----
"""

INVOICE_KINDS = ("InvoiceSent", "InvoiceUpdate", "InvoicePaid", "InvoicePartiallyPaid", "InvoiceVoid", "InvoiceDelete")
ORDER_KINDS = ("OrderCreate", "OrderStatusUpdate")
CONTACT_KINDS = ("ContactCreate", "ContactUpdate", "ContactDelete")  # keep the contact directory fresh
HANDLED_KINDS = frozenset(INVOICE_KINDS + ORDER_KINDS + CONTACT_KINDS)
# Invoice examples come without `type`; their status says which event it was (InvoiceDelete.md: "delete").
KIND_BY_INVOICE_STATUS = {
    "sent": "InvoiceSent",
    "paid": "InvoicePaid",
    "partially_paid": "InvoicePartiallyPaid",
    "void": "InvoiceVoid",
    "delete": "InvoiceDelete",
    "deleted": "InvoiceDelete",
}
LAST_WEBHOOK_CURSOR = "last_webhook_at"
RETRY_PASS = "retry-pass:"
RETRY_PASS_SECONDS = 6 * 3600.0
LAST_WEBHOOK_EVERY_SECONDS = 30.0
# How long a webhook's account resolution (settings, credentials, public keys) is reused. A change made in this
# server (a rotated key, a disconnect) applies at once; one made by another process within this time.
RESOLUTION_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class WebhookKeys:
    rsa: tuple[rsa.RSAPublicKey, ...]
    ed25519: tuple[ed25519.Ed25519PublicKey, ...]

    @classmethod
    def from_text(cls, rsa_pems: Sequence[str], ed25519_keys: Sequence[str]) -> WebhookKeys:
        """Parsed once per distinct set of keys (the key objects are immutable, so they are shared)."""
        return _parsed_keys(tuple(rsa_pems), tuple(ed25519_keys))

    @classmethod
    def _parse(cls, rsa_pems: Sequence[str], ed25519_keys: Sequence[str]) -> WebhookKeys:
        rsa_keys = []
        for pem in rsa_pems:
            key = serialization.load_pem_public_key(pem.encode())
            if not isinstance(key, rsa.RSAPublicKey):
                raise ValueError("the x-wh-signature key must be an RSA public key")
            rsa_keys.append(key)
        return cls(tuple(rsa_keys), tuple(_ed25519_key(text) for text in ed25519_keys))

    def verify(self, body: bytes, ghl_signature: str | None, wh_signature: str | None) -> str | None:
        """The header whose signature checks out (Ed25519 first), or None."""
        if ghl_signature:
            signature = _b64(ghl_signature)
            for ed_key in self.ed25519:
                try:
                    ed_key.verify(signature, body)
                    return "x-ghl-signature"
                except InvalidSignature:
                    continue
        if wh_signature:
            signature = _b64(wh_signature)
            for rsa_key in self.rsa:
                try:
                    rsa_key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
                    return "x-wh-signature"
                except InvalidSignature:
                    continue
        return None


@functools.lru_cache(maxsize=1024)
def _parsed_keys(rsa_pems: tuple[str, ...], ed25519_keys: tuple[str, ...]) -> WebhookKeys:
    return WebhookKeys._parse(rsa_pems, ed25519_keys)


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=False)
    except (binascii.Error, ValueError):
        return b""


def _ed25519_key(text: str) -> ed25519.Ed25519PublicKey:
    """A PEM public key, or the raw 32-byte key in base64."""
    if "BEGIN" in text:
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise ValueError("the x-ghl-signature key must be an Ed25519 public key")
        return key
    return ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(text))


class RetryPasses:
    """webhookIds we answered 429: HighLevel re-sends the same body (same timestamp) ~10 minutes later."""

    def __init__(self, ttl_seconds: float = 6 * 3600, max_entries: int = 10_000) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._entries: OrderedDict[str, float] = OrderedDict()

    def grant(self, webhook_id: str) -> None:
        self._entries[webhook_id] = time.monotonic() + self._ttl
        self._entries.move_to_end(webhook_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def holds(self, webhook_id: object) -> bool:
        if not isinstance(webhook_id, str):
            return False
        expiry = self._entries.get(webhook_id)
        return expiry is not None and expiry > time.monotonic()


_envelope = msgspec.json.Decoder(WebhookEnvelope)


def peek(raw: bytes) -> WebhookEnvelope | None:
    """Routing fields only, before anything is trusted; None if the body is not a JSON object."""
    try:
        return _envelope.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None  # read again, strictly, only once the signature is checked


def event_kind(body: dict[str, Any]) -> str | None:
    kind = body.get("type")
    if isinstance(kind, str) and kind:
        return kind
    if "invoiceNumber" in body and isinstance(body.get("status"), str):
        return KIND_BY_INVOICE_STATUS.get(body["status"], "InvoiceUpdate")
    return None


def object_key(kind: str, body: dict[str, Any]) -> str:
    object_id = str(body.get("_id") or body.get("id") or "")
    if kind in INVOICE_KINDS:
        return f"invoice:{object_id}"
    if kind in ORDER_KINDS:
        return f"order:{object_id}"
    return f"{kind}:{object_id}"


def external_id(body: dict[str, Any], raw: bytes) -> str:
    webhook_id = body.get("webhookId")
    if isinstance(webhook_id, str) and webhook_id:
        return f"webhook:{webhook_id}"
    return "body:" + hashlib.sha256(raw).hexdigest()  # no webhookId: identical bodies are one event


class WebhookReceiver:
    def __init__(self, plugin: PluginContext, connections: Connections) -> None:
        self.plugin = plugin
        self.connections = connections
        self.retry_passes = RetryPasses()
        self._last_recorded: dict[str, float] = {}
        self._resolutions: TtlCache[tuple[Resolved, WebhookKeys]] = TtlCache(RESOLUTION_CACHE_SECONDS)

    async def keys_for(self, resolved: Resolved | None) -> WebhookKeys:
        settings = resolved.settings if resolved else None
        rsa_pems: list[str] = []
        ed_keys: list[str] = []
        if settings and settings.webhook_rsa_public_key:
            rsa_pems.append(settings.webhook_rsa_public_key)
        if settings and settings.webhook_ed25519_public_key:
            ed_keys.append(settings.webhook_ed25519_public_key)
        if not rsa_pems and not ed_keys:
            # Nothing is fetched for an unsigned request from a URL an account configured: only the sandbox
            # mounted in this server is asked (it is this process), other sandboxes' keys were read at connect.
            mounted = self.plugin.sandbox_url("crmconnect")
            sandbox_url = resolved.base_url if resolved and resolved.sandbox else mounted
            if sandbox_url and (resolved is None or resolved.sandbox):
                keys = self.connections.cached_sandbox_keys(sandbox_url)
                if keys is None and sandbox_url == mounted:
                    keys = await self.connections.sandbox_keys(sandbox_url)
                if keys is not None:
                    rsa_pems.append(keys["x-wh-signature"])
                    ed_keys.append(keys["x-ghl-signature"])
            if resolved is None or not resolved.sandbox:
                rsa_pems.append(HIGHLEVEL_RSA_PUBLIC_KEY)
        return WebhookKeys.from_text(rsa_pems, ed_keys)

    async def resolution(self, account: AccountContext | None) -> tuple[Resolved | None, WebhookKeys]:
        """How `account` is connected and the keys its webhooks are signed with: read from the store (three
        reads) and decrypted once per second at most, and again as soon as its settings or secrets change."""
        if account is None:
            return None, await self.keys_for(None)

        async def load() -> tuple[Resolved, WebhookKeys]:
            resolved = await resolve(account)
            return resolved, await self.keys_for(resolved)

        return await self._resolutions.get(account.account_id, load, version=account.config_version)

    async def receive(self, request: Request) -> Response:
        raw = await read_body(request)
        envelope = peek(raw)
        account = await self._account(envelope)
        try:
            resolved, keys = await self.resolution(account)
        except Exception as exc:
            logger.warning("cannot load the account's connection or webhook public keys: %s", exc)
            return _error(503, "webhook public keys are unavailable; try again later")
        headers = request.headers
        if keys.verify(raw, headers.get("x-ghl-signature"), headers.get("x-wh-signature")) is None:
            return _error(401, "the webhook signature (x-ghl-signature or x-wh-signature) is missing or invalid")
        body = parse_json(raw)
        if not isinstance(body, dict):
            return _error(400, "the webhook body must be a JSON object")
        max_age = resolved.settings.webhook_max_age_seconds if resolved else 300.0
        stale = self._stale(body.get("timestamp"), max_age)
        if stale and not await self._retry_allowed(account, body.get("webhookId")):
            return _error(400, stale)
        kind = event_kind(body)
        location = envelope.location if envelope else None
        if account is None:
            return _ignored(f"no account is connected to location {location!r}")
        if kind not in HANDLED_KINDS:
            return _ignored(f"event type {kind!r} is not used")
        if not await account.is_enabled():
            return _ignored("the crmconnect plugin is disabled for this account")
        assert kind is not None
        if kind in CONTACT_KINDS:
            return await self._contact(account, resolved, kind, body)
        event_id = external_id(body, raw)
        try:
            created = await account.notify(kind, body, external_id=event_id, object_key=object_key(kind, body))
        except Exception as exc:
            logger.warning("could not persist webhook %s: %s", event_id, exc)
            if isinstance(body.get("webhookId"), str):
                await self._grant_retry(account, body["webhookId"])
            return _error(429, "the event could not be stored; retry later", {"Retry-After": "60"})
        if stale:
            await self._spend_retry(account, body.get("webhookId"))
        await self._record_receipt(account)
        return JSONResponse({"status": "stored" if created else "duplicate", "id": event_id})

    async def _contact(
        self, account: AccountContext, resolved: Resolved | None, kind: str, body: dict[str, Any]
    ) -> Response:
        """A contact event updates the contact directory at once (a few store writes, no CRM call, no queued
        delivery): applying one twice changes nothing, and 200 still means committed."""
        location_id = resolved.location_id if resolved and resolved.location_id else str(body.get("locationId"))
        try:
            await directory.apply_webhook(account, location_id, kind, body)
        except Exception as exc:
            logger.warning("could not apply contact webhook %s: %s", body.get("webhookId"), exc)
            if isinstance(body.get("webhookId"), str):
                await self._grant_retry(account, body["webhookId"])
            return _error(429, "the contact could not be recorded; retry later", {"Retry-After": "60"})
        await self._record_receipt(account)
        return JSONResponse({"status": "applied"})

    # HighLevel re-sends a 429'd webhook ~10 minutes later with its original timestamp: that retry is let
    # through the freshness check. The allowance is kept in the store (a restart must not turn the retry
    # into a 400 that HighLevel never retries) and in memory (the store may be what just failed).

    async def _grant_retry(self, account: AccountContext, webhook_id: str) -> None:
        self.retry_passes.grant(webhook_id)
        try:
            await account.set_cursor(RETRY_PASS + webhook_id[:200], repr(self.plugin.now() + RETRY_PASS_SECONDS))
        except Exception as exc:
            logger.warning("could not keep the retry allowance of %s durably: %s", webhook_id, exc)

    async def _retry_allowed(self, account: AccountContext | None, webhook_id: object) -> bool:
        if not isinstance(webhook_id, str) or not webhook_id:
            return False
        if self.retry_passes.holds(webhook_id):
            return True
        if account is None:
            return False
        until = await account.get_cursor(RETRY_PASS + webhook_id[:200])
        try:
            return until is not None and float(until) > self.plugin.now()
        except ValueError:
            return False

    async def _spend_retry(self, account: AccountContext, webhook_id: object) -> None:
        if isinstance(webhook_id, str) and webhook_id:
            with contextlib.suppress(Exception):
                await account.set_cursor(RETRY_PASS + webhook_id[:200], None)

    async def _account(self, envelope: WebhookEnvelope | None) -> AccountContext | None:
        location = envelope.location if envelope else None
        return await self.plugin.account_for_external_id(location) if location else None

    def _stale(self, timestamp: Any, max_age: float) -> str | None:
        """Why the timestamp is unacceptable, or None. No timestamp at all is accepted (older payloads)."""
        if timestamp is None:
            return None
        if not isinstance(timestamp, str):
            return "the webhook timestamp is not a string"
        sent = parse_datetime(timestamp, datetime.min.replace(tzinfo=UTC))
        age = abs(self.plugin.now() - sent.timestamp()) if sent.year > 1 else None
        if age is None:
            return "the webhook timestamp is not an ISO 8601 date-time"
        if age > max_age:
            return f"the webhook timestamp is {age:.0f} s from now (more than {max_age:.0f} s): refused as a replay"
        return None

    async def _record_receipt(self, account: AccountContext) -> None:
        """For the integration card; at most every 30 s per account so bursts cost no extra writes."""
        now = self.plugin.now()
        if now - self._last_recorded.get(account.account_id, 0.0) < LAST_WEBHOOK_EVERY_SECONDS:
            return
        self._last_recorded[account.account_id] = now
        try:
            await account.set_cursor(LAST_WEBHOOK_CURSOR, datetime.fromtimestamp(now, UTC).isoformat())
        except Exception as exc:  # the event is stored; a missed card timestamp must not fail the webhook
            logger.warning("could not record the webhook time: %s", exc)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response: Response = json_error(status, message, headers)
    return response


def _ignored(message: str) -> Response:
    return JSONResponse({"status": "ignored", "message": message})
