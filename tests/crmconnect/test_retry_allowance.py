"""The allowance for HighLevel's late retry of a 429'd webhook survives a restart (it lives in the store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledgerbridge_crmconnect.plugin import CrmConnectPlugin
from ledgerbridge_crmconnect.webhooks import RetryPasses

from tests.crmconnect.conftest import ACCOUNT, Stack
from tests.crmconnect.test_webhooks import invoice_body, post, signed


async def test_a_retry_of_a_429_after_a_restart_is_stored_not_refused_as_stale(stack: Stack) -> None:
    four_minutes_ago = (datetime.now(UTC) - timedelta(minutes=4)).isoformat().replace("+00:00", "Z")
    raw, headers = signed(stack, invoice_body(stack, timestamp=four_minutes_ago))
    stack.store.failures = 1
    assert (await post(stack, raw, headers)).status_code == 429

    # a restart forgets what was in memory; by the time HighLevel retries, the timestamp is too old
    plugin = stack.runtime.plugins.plugin("crmconnect")
    assert isinstance(plugin, CrmConnectPlugin)
    plugin.receiver.retry_passes = RetryPasses()
    ctx = await stack.runtime.plugin_context("crmconnect").account(ACCOUNT)
    assert ctx is not None
    await ctx.update_settings(webhook_max_age_seconds=60.0)

    retry = await post(stack, raw, headers)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "stored"
    assert (await post(stack, raw, headers)).status_code == 400  # the allowance is spent: a replay is refused


async def test_a_stale_webhook_that_was_never_answered_429_is_refused(stack: Stack) -> None:
    old = (datetime.now(UTC) - timedelta(minutes=20)).isoformat().replace("+00:00", "Z")
    raw, headers = signed(stack, invoice_body(stack, timestamp=old))
    response = await post(stack, raw, headers)
    assert response.status_code == 400
    assert "replay" in response.json()["error"]["message"]
