"""The webhook route reuses an account's resolution (settings, credentials, public keys) between requests, and
a change made in this server applies to the very next webhook; concurrent webhooks share commits, each
acknowledged only once its event is committed."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ledgerbridge_crmconnect.webhooks import RESOLUTION_CACHE_SECONDS

from tests.crmconnect.conftest import ACCOUNT, ADMIN, Stack
from tests.crmconnect.test_webhooks import invoice_body, post, signed


def public_text(key: ed25519.Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def signed_with(key: ed25519.Ed25519PrivateKey, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, {"x-ghl-signature": base64.b64encode(key.sign(raw)).decode()}


async def set_webhook_key(stack: Stack, key: ed25519.Ed25519PrivateKey) -> None:
    answer = await stack.http.patch(
        f"{stack.server_url}/admin/api/accounts/{ACCOUNT}/plugins/crmconnect/settings",
        json={"webhook_ed25519_public_key": public_text(key)},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert answer.status_code == 200, answer.text


def stored_ids(stack: Stack) -> set[str]:
    """The raw webhooks another connection sees stored: committed rows only."""
    connection = sqlite3.connect(stack.runtime.settings.database_path)
    try:
        return {
            row[0] for row in connection.execute("SELECT external_id FROM events WHERE external_id LIKE 'webhook:%'")
        }
    finally:
        connection.close()


async def test_a_rotated_webhook_key_applies_to_the_very_next_webhook(stack: Stack) -> None:
    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    await set_webhook_key(stack, old)
    first = await post(stack, *signed_with(old, invoice_body(stack)))
    assert first.json()["status"] == "stored"  # the old key is now what the route has in memory

    await set_webhook_key(stack, new)
    with_old = await post(stack, *signed_with(old, invoice_body(stack)))
    with_new = await post(stack, *signed_with(new, invoice_body(stack)))

    assert with_old.status_code == 401
    assert with_new.status_code == 200
    assert with_new.json()["status"] == "stored"


async def test_a_key_set_by_the_plugin_itself_applies_at_once(stack: Stack) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    assert (await post(stack, *signed(stack, invoice_body(stack)))).json()["status"] == "stored"  # sandbox keys

    account = await stack.account()
    await account.update_settings(webhook_ed25519_public_key=public_text(key))

    assert (await post(stack, *signed(stack, invoice_body(stack)))).status_code == 401
    assert (await post(stack, *signed_with(key, invoice_body(stack)))).json()["status"] == "stored"


async def test_a_key_changed_by_another_process_applies_within_a_second(stack: Stack) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    assert (await post(stack, *signed(stack, invoice_body(stack)))).json()["status"] == "stored"  # sandbox keys
    state = await stack.runtime.store.get_plugin_state(ACCOUNT, "crmconnect")
    changed = {**state.settings, "webhook_ed25519_public_key": public_text(key)}
    await stack.runtime.store.set_plugin_settings(ACCOUNT, "crmconnect", changed)  # as the CLI would, elsewhere

    await asyncio.sleep(RESOLUTION_CACHE_SECONDS + 0.1)

    assert (await post(stack, *signed(stack, invoice_body(stack)))).status_code == 401
    assert (await post(stack, *signed_with(key, invoice_body(stack)))).json()["status"] == "stored"


async def test_concurrent_webhooks_are_each_committed_before_their_answer(stack: Stack) -> None:
    bodies = [signed(stack, invoice_body(stack, _id=f"{n:024x}")) for n in range(40)]
    committed_at_answer: dict[str, bool] = {}

    async def send(raw: bytes, headers: dict[str, str]) -> httpx.Response:
        answer = await post(stack, raw, headers)
        event_id = answer.json()["id"]
        committed_at_answer[event_id] = event_id in stored_ids(stack)
        return answer

    answers = await asyncio.gather(*(send(raw, headers) for raw, headers in bodies))

    assert [a.json()["status"] for a in answers] == ["stored"] * 40
    assert len(committed_at_answer) == 40
    assert all(committed_at_answer.values())


async def test_when_a_shared_commit_fails_every_webhook_in_it_gets_429_and_none_is_stored(stack: Stack) -> None:
    before = stored_ids(stack)
    stack.store.failures = 1  # the next inbox transaction fails, whichever webhooks it carries
    bodies = [signed(stack, invoice_body(stack, _id=f"{n:024x}")) for n in range(20)]

    answers = await asyncio.gather(*(post(stack, raw, headers) for raw, headers in bodies))

    refused = [
        json.loads(raw)["webhookId"] for (raw, _), a in zip(bodies, answers, strict=True) if a.status_code == 429
    ]
    taken = {a.json()["id"] for a in answers if a.status_code == 200}
    assert refused  # the failed transaction carried at least one of them
    assert all(a.status_code in (200, 429) for a in answers)
    assert all(a.json()["status"] == "stored" for a in answers if a.status_code == 200)
    stored = stored_ids(stack) - before
    assert stored == taken  # everything acknowledged is committed; nothing refused is
    assert not {f"webhook:{webhook_id}" for webhook_id in refused} & stored
