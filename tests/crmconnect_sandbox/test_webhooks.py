"""Webhooks: signatures verify with the published keys; only a 429 answer is retried."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from ledgerbridge_crmconnect.sandbox.signing import WebhookKeys

from .conftest import LOCATION, Receiver, Sandbox, make_config, start


def verify_wh_signature(public_pem: str, body: bytes, signature: str) -> bool:
    """What a receiver does with x-wh-signature (RSA PKCS#1 v1.5, SHA-256)."""
    key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def verify_ghl_signature(public_raw_b64: str, body: bytes, signature: str) -> bool:
    """What a receiver does with x-ghl-signature (Ed25519)."""
    key = ed25519.Ed25519PublicKey.from_public_bytes(base64.b64decode(public_raw_b64))
    try:
        key.verify(base64.b64decode(signature), body)
    except InvalidSignature:
        return False
    return True


async def test_deliveries_verify_with_both_public_keys(sandbox: Sandbox, receiver: Receiver) -> None:
    keys = await sandbox.control("GET", "/webhook-keys")
    assert keys["x-wh-signature"].startswith("-----BEGIN PUBLIC KEY-----")
    await sandbox.contact()
    await sandbox.engine.webhooks.drain()
    ((headers, raw),) = receiver.received
    assert verify_wh_signature(keys["x-wh-signature"], raw, headers["x-wh-signature"])
    assert verify_ghl_signature(keys["x-ghl-signature-raw-base64"], raw, headers["x-ghl-signature"])
    tampered = raw.replace(b"ada@example.com", b"eve@example.com")
    assert not verify_wh_signature(keys["x-wh-signature"], tampered, headers["x-wh-signature"])
    assert not verify_ghl_signature(keys["x-ghl-signature-raw-base64"], tampered, headers["x-ghl-signature"])
    body = receiver.bodies()[0]
    assert body["type"] == "ContactCreate" and body["locationId"] == LOCATION and uuid.UUID(body["webhookId"])
    sent_at = datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - sent_at) < timedelta(minutes=5)
    ed_pem = serialization.load_pem_public_key(keys["x-ghl-signature"].encode())
    assert isinstance(ed_pem, ed25519.Ed25519PublicKey)


async def test_a_429_answer_is_retried_until_accepted(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.statuses = [429, 429]
    await sandbox.contact()
    await sandbox.engine.webhooks.drain()
    assert len(receiver.received) == 3
    assert len({raw for _, raw in receiver.received}) == 1  # the same signed body each time
    (delivery,) = (await sandbox.control("GET", "/webhooks/deliveries"))["deliveries"]
    assert delivery["state"] == "delivered" and [a["status"] for a in delivery["attempts"]] == [429, 429, 200]


async def test_429_retries_stop_after_six(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.statuses = [429] * 10
    await sandbox.contact()
    await sandbox.engine.webhooks.drain()
    assert len(receiver.received) == 7  # the first attempt and six retries
    (delivery,) = sandbox.engine.webhooks.log()
    assert delivery["state"] == "failed"


async def test_a_500_answer_is_final(sandbox: Sandbox, receiver: Receiver) -> None:
    receiver.statuses = [500]
    await sandbox.contact()
    await sandbox.engine.webhooks.drain()
    assert len(receiver.received) == 1
    (delivery,) = (await sandbox.control("GET", "/webhooks/deliveries?type=ContactCreate"))["deliveries"]
    assert delivery["state"] == "failed" and delivery["attempts"][0]["status"] == 500


async def test_webhook_url_can_be_changed_and_cleared(sandbox: Sandbox, receiver: Receiver) -> None:
    await sandbox.control("PUT", "/webhook-url", {"url": None}, expect=200)
    await sandbox.contact()
    await sandbox.engine.webhooks.drain()
    assert receiver.received == [] and sandbox.engine.webhooks.log()[0]["state"] == "no_webhook_url"
    await sandbox.control("PUT", "/webhook-url", {"url": receiver.url}, expect=200)
    await sandbox.contact("second@example.com")
    await sandbox.engine.webhooks.drain()
    assert len(receiver.received) == 1
    await sandbox.control("DELETE", "/webhooks/deliveries", expect=200)
    assert sandbox.engine.webhooks.log() == []


async def test_events_emitted_before_start_are_delivered(receiver: Receiver) -> None:
    config = make_config(webhook_url=receiver.url)
    async for sb in start(config):
        await sb.contact()
        await sb.engine.webhooks.drain()
        assert len(receiver.received) == 1


@pytest.mark.parametrize("bits", [2048])
def test_keys_persist_in_the_keys_dir(tmp_path: Path, bits: int) -> None:
    first = WebhookKeys.load_or_create(str(tmp_path), bits)
    second = WebhookKeys.load_or_create(str(tmp_path), bits)
    assert first.public() == second.public()
    assert (tmp_path / "webhook-rsa-private.pem").stat().st_mode & 0o077 == 0
    body = b'{"a":1}'
    assert verify_wh_signature(second.rsa_public_pem(), body, first.sign_rsa(body))
