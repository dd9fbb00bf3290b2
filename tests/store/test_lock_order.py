"""PostgreSQL only: statements that lock many deliveries at once lock them in one order, so none deadlocks."""

from __future__ import annotations

import asyncio

from ledgerbridge.store import NewEvent
from ledgerbridge.store.postgres import PostgresStore

NOW = 1_000_000.0
DELIVERIES = 300


def payment(number: int) -> NewEvent:
    return NewEvent(
        account_id="acme",
        source="crm",
        external_id=f"e{number}",
        type="payment",
        object_key=f"payment:{number}",
        payload=b"{}",
        consumers=("books",),
    )


async def test_a_replica_releasing_its_leases_while_the_plugin_is_paused_does_not_deadlock(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url, max_size=2) for _ in range(2)]
    for store in stores:
        await store.open()
    replica, admin = stores
    try:
        await admin.create_account("acme", "Acme")
        await admin.set_plugin_enabled("acme", "books", True)
        await admin.append_events([payment(n) for n in range(DELIVERIES)], NOW)
        for round_ in range(10):
            claimed = await replica.claim_deliveries("worker", DELIVERIES, 30, NOW)
            assert len(claimed) == DELIVERIES
            ids = [c.delivery.id for c in claimed]
            # leases running out in the opposite order to the ids: a scan by ready_at meets the rows backwards
            for offset, delivery_id in enumerate(reversed(ids)):
                await replica.renew_leases("worker", [delivery_id], NOW + 30 + offset)
            # a replica shutting down hands its leases back while an operator pauses the plugin, then resumes it
            await asyncio.gather(replica.release_leases("worker"), admin.set_paused("acme", "books", "revoked"))
            await admin.set_paused("acme", "books", None)
            counts = await admin.count_deliveries("acme")
            assert counts == {"pending": DELIVERIES}, round_
    finally:
        for store in stores:
            await store.close()
