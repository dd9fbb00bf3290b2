"""A restarted server keeps working with Xero without reconnecting: its tokens and the sandbox's books survive."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgerbridge.testing import free_port

from .conftest import payment, stack


async def test_after_a_restart_payments_still_reach_the_same_xero_organisation(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for name in ("CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_KEY", "SANDBOX_URL"):
        monkeypatch.delenv(f"LEDGERBRIDGE_XERO_{name}", raising=False)
    port = free_port()
    async with stack(tmp_path, port) as first:
        await first.connect()
        await first.publish(payment("p-1", total="25.00"))
        await first.settle()
        tenant = first.tenant_id
    assert (tmp_path / "sandboxes" / "xero" / "state.json").is_file()
    async with stack(tmp_path, port, first_run=False) as second:
        second.tenant_id = tenant
        await second.publish(payment("p-2", total="35.00", email="grace@example.com", name="Grace Hopper"),
                             external_id="after-restart")  # fmt: skip
        await second.settle()
        assert await second.dead() == []
        totals = sorted(str(t["Total"]) for t in second.rows("bank_transactions"))
        assert totals == ["25.00", "35.00"]
        state = await second.runtime.store.get_plugin_state("acme", "xero")
        assert not state.paused_reason
