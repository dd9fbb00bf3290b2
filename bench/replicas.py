"""Delivery throughput of 1, 2 and 4 `ledgerbridge serve` replicas sharing one PostgreSQL database.

The consumer is a vendor API with a fixed latency per call (I/O-bound, the real case). For each fleet size the
replicas start idle, then one transaction appends the backlog (one payment per object, spread over accounts),
the store's NOTIFY wakes every replica, and the clock runs until every delivery is done. The same backlog on one
SQLite replica is the baseline. Target: 4 replicas / 1 replica >= 3.5.

    .venv/bin/python bench/replicas.py [--events 400] [--latency 0.2] [--workers 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
from ledgerbridge import Contact, Money, Payment
from ledgerbridge.context import new_event
from ledgerbridge.store import NewEvent, SQLiteStore, Store
from ledgerbridge.store.postgres import PostgresStore
from ledgerbridge.testing import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.postgres_cluster import running_cluster

HERE = Path(__file__).parent
LEDGERBRIDGE = str(Path(sys.executable).with_name("ledgerbridge"))
ACCOUNTS = [f"account-{i}" for i in range(8)]


def payment(account: str, number: int) -> NewEvent:
    total = Money(amount=Decimal(1), currency="USD")
    event = Payment(
        payment_id=f"p{number}",
        source_kind="order_form",
        payer=Contact(name="Ada Lovelace", email="ada@example.com"),
        lines=(),
        subtotal=total,
        discount=Money.zero("USD"),
        tax=Money.zero("USD"),
        total=total,
        paid_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return new_event(account, "bench", f"e{number}", event, frozenset({"slow_books"}))


def start_replica(port: int, env: dict[str, str], data: Path) -> subprocess.Popen[bytes]:
    command = [LEDGERBRIDGE, "serve", "--port", str(port), "--no-sandboxes", "--log-level", "warning"]
    return subprocess.Popen(
        [*command, "--plugins-dir", str(HERE / "replica_plugins"), "--data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
    )


async def run_fleet(make_store: Callable[[], Store], env: dict[str, str], replicas: int, events: int) -> float:
    """Deliveries per second for `replicas` servers draining `events` payments."""
    data = Path(tempfile.mkdtemp(prefix="lb-replicas-"))
    store = make_store()
    await store.open()
    for account in ACCOUNTS:
        await store.create_account(account, account)
        await store.set_plugin_enabled(account, "slow_books", True)
    processes = []
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(replicas):
                port = free_port()
                processes.append(start_replica(port, env, data))
                while True:
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
        backlog = [payment(ACCOUNTS[i % len(ACCOUNTS)], i) for i in range(events)]
        started = time.perf_counter()
        await store.append_events(backlog, time.time())
        while True:
            counts = [await store.count_deliveries(a) for a in ACCOUNTS]
            if sum(c.get("done", 0) for c in counts) == events:
                break
            if any(c.get("dead") for c in counts):
                raise SystemExit(f"dead deliveries: {counts}")
            await asyncio.sleep(0.05)
        return events / (time.perf_counter() - started)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per vendor call")
    parser.add_argument("--workers", type=int, default=8, help="LEDGERBRIDGE_WORKERS per replica (the default)")
    args = parser.parse_args()
    env = os.environ | {
        "LEDGERBRIDGE_ADMIN_TOKEN": "bench",
        "LEDGERBRIDGE_BLOCK_PLUGINS": "quickbooks,crmconnect",
        "LEDGERBRIDGE_WORKERS": str(args.workers),
        "LEDGERBRIDGE_BENCH_LATENCY": str(args.latency),
    }
    ceiling = args.workers / args.latency
    print(
        f"{args.events} payments over {len(ACCOUNTS)} accounts, one object each; vendor latency {args.latency * 1000:.0f} ms;"
        f" {args.workers} workers per replica (ceiling {ceiling:.0f}/s per replica)"
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baseline.db"
        sqlite_env = env | {"LEDGERBRIDGE_DATABASE": str(path)}
        baseline = await run_fleet(lambda: SQLiteStore(path), sqlite_env, 1, args.events)
        print(f"SQLite, 1 replica:      {baseline:7.1f} deliveries/s")
    rates: dict[int, float] = {}
    with running_cluster() as cluster:
        for replicas in (1, 2, 4):
            url = cluster.create_database()
            pg_env = env | {"LEDGERBRIDGE_DATABASE_URL": url}
            rates[replicas] = await run_fleet(lambda u=url: PostgresStore(u), pg_env, replicas, args.events)
            print(f"PostgreSQL, {replicas} replica{'s' if replicas > 1 else ' '}: {rates[replicas]:7.1f} deliveries/s")
    print(
        f"4 replicas / 1 replica: {rates[4] / rates[1]:.2f} (target >= 3.5); PostgreSQL 1 / SQLite 1: {rates[1] / baseline:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
