"""Three `ledgerbridge serve` replicas on one PostgreSQL database, SIGKILLed and restarted while webhooks arrive:
nothing acknowledged is lost, nothing is written twice, and each object's events reach the vendor in order."""

from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from ledgerbridge.store.postgres import PostgresStore
from ledgerbridge.testing import free_port

from tests.store.processes import Process

PLUGINS = Path(__file__).parent / "failover_plugins"
ACCOUNTS = ("acme", "globex", "initech", "umbrella")
OBJECTS_PER_ACCOUNT = 10
VERSIONS = 25  # 4 accounts x 10 payments x 25 versions = 1,000 webhooks
SENDERS = 8


def new_replica(env: dict[str, str], data_dir: Path) -> Process:
    port = free_port()
    return Process(["serve", "--port", str(port), "--no-sandboxes", "--log-level", "warning",
                    "--plugins-dir", str(PLUGINS), "--data-dir", str(data_dir)],
                   env, data_dir / f"replica-{port}.log", port)  # fmt: skip


async def prepare(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        for account in ACCOUNTS:
            await store.create_account(account, account.title())
            for plugin in ("source", "ledger"):
                await store.set_plugin_enabled(account, plugin, True)
    finally:
        await store.close()
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "CREATE TABLE vendor_documents (seq BIGSERIAL PRIMARY KEY, request_id TEXT UNIQUE NOT NULL,"
            " account_id TEXT NOT NULL, payment_id TEXT NOT NULL, version INTEGER NOT NULL)"
        )


@pytest.mark.slow
@pytest.mark.fleet
async def test_replicas_killed_at_random_lose_nothing_write_nothing_twice_and_keep_each_object_in_order(
    postgres_url: str, tmp_path: Path
) -> None:
    await prepare(postgres_url)
    env = os.environ | {
        "LEDGERBRIDGE_DATABASE_URL": postgres_url,
        "LEDGERBRIDGE_ADMIN_TOKEN": "failover-admin-token",
        "LEDGERBRIDGE_BLOCK_PLUGINS": "quickbooks,crmconnect",
        "LEDGERBRIDGE_WORKERS": "4",
        "LEDGERBRIDGE_LEASE_SECONDS": "2",
        "LEDGERBRIDGE_BACKOFF_BASE_SECONDS": "0.05",
        "LEDGERBRIDGE_BACKOFF_CAP_SECONDS": "0.2",
    }
    replicas = [new_replica(env, tmp_path) for _ in range(3)]
    rng = random.Random(15)
    acknowledged: set[str] = set()
    kills = 0
    async with httpx.AsyncClient(timeout=5.0) as client:
        replicas[0].start()
        await replicas[0].ready(client, "/readyz")  # the first start makes the schema and the data folder's keys
        for replica in replicas[1:]:
            replica.start()
        await asyncio.gather(*(r.ready(client, "/readyz") for r in replicas[1:]))

        async def send(account: str, payment: int, version: int) -> None:
            event_id = f"{account}-p{payment}-v{version}"
            body = {"account": account, "id": event_id, "payment_id": f"p{payment}", "version": version}
            for _ in range(200):  # a vendor retries until some replica acknowledges
                replica = rng.choice(replicas)
                try:
                    response = await client.post(replica.url + "/plugins/source/events", json=body)
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
                    continue
                if response.status_code == 200:
                    acknowledged.add(event_id)
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"{event_id} was never acknowledged")

        async def sender(index: int) -> None:
            objects = [(a, p) for a in ACCOUNTS for p in range(OBJECTS_PER_ACCOUNT)][index::SENDERS]
            for version in range(1, VERSIONS + 1):
                for account, payment in objects:  # an object's next version only once the last was acknowledged
                    await send(account, payment, version)

        async def killer(stop: asyncio.Event) -> None:
            nonlocal kills
            while not stop.is_set() and kills < 12:
                await asyncio.sleep(rng.uniform(0.3, 0.8))
                victim = rng.choice(replicas)
                victim.kill()
                kills += 1
                await asyncio.sleep(rng.uniform(0.1, 0.4))
                victim.start()

        stop = asyncio.Event()
        chaos = asyncio.create_task(killer(stop))
        try:
            await asyncio.gather(*(sender(i) for i in range(SENDERS)))
        finally:
            stop.set()
            await chaos
        await asyncio.gather(*(r.ready(client, "/readyz") for r in replicas))

        deadline = time.monotonic() + 60
        with psycopg.connect(postgres_url, autocommit=True) as db:
            while time.monotonic() < deadline:
                (pending,) = db.execute("SELECT count(*) FROM deliveries WHERE state = 'pending'").fetchone() or (0,)
                if pending == 0:
                    break
                await asyncio.sleep(0.2)
            states = dict(
                db.execute("SELECT state, count(*) FROM deliveries WHERE plugin = 'ledger' GROUP BY state").fetchall()
            )
            events = {r[0] for r in db.execute("SELECT external_id FROM events").fetchall()}
            (rerun,) = db.execute("SELECT count(*) FROM deliveries WHERE attempts > 1").fetchone() or (0,)
            documents = db.execute(
                "SELECT account_id, payment_id, version FROM vendor_documents ORDER BY seq"
            ).fetchall()
        for replica in replicas:
            replica.stop()

    total = len(ACCOUNTS) * OBJECTS_PER_ACCOUNT * VERSIONS
    assert kills >= 3
    assert rerun >= 1  # some deliveries were cut short by a kill and ran again on another replica
    assert len(acknowledged) == total
    assert acknowledged <= events  # acknowledged = committed
    assert states == {"done": total}
    assert len(documents) == len(set(documents)) == total  # none lost, none written twice
    versions: dict[tuple[str, str], list[int]] = {}
    for account, payment, version in documents:
        versions.setdefault((account, payment), []).append(version)
    assert all(v == list(range(1, VERSIONS + 1)) for v in versions.values())  # each object in order
