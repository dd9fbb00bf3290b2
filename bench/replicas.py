"""Delivery throughput of 1, 2 and 4 `ledgerbridge serve` replicas sharing one PostgreSQL database.

The consumer is a vendor API with a fixed latency per call (I/O-bound, the real case). For each fleet size the
replicas start idle, then one transaction appends the backlog (one payment per object, spread over accounts),
the store's NOTIFY wakes every replica, and the clock runs from that commit to the last delivery's recorded finish
(its `updated_at`, so how often this script looks does not count). The same backlog on one SQLite replica is the
baseline. Target: 4 replicas / 1 replica >= 3.5. Each figure is the median of `--runs` runs (min and max shown).

    .venv/bin/python bench/replicas.py [--events 640] [--latency 0.2] [--workers 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_fleet(
    make_store: Callable[[], Store], env: dict[str, str], replicas: int, events: int
) -> tuple[float, float]:
    """Deliveries per second for `replicas` servers draining `events` payments, and their CPU ms per delivery."""
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
                process = start_replica(port, env, data)
                processes.append(process)
                while True:
                    if process.poll() is not None:
                        raise SystemExit(f"a replica exited with status {process.returncode} before it was ready")
                    try:
                        if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
        backlog = [payment(ACCOUNTS[i % len(ACCOUNTS)], i) for i in range(events)]
        idle_cpu = sum(cpu_seconds(p.pid) for p in processes)
        started = time.time()
        await store.append_events(backlog, started)
        while True:
            counts = [await store.count_deliveries(a) for a in ACCOUNTS]
            if sum(c.get("done", 0) for c in counts) == events:
                break
            if any(c.get("dead") for c in counts):
                raise SystemExit(f"dead deliveries: {counts}")
            await asyncio.sleep(0.5)  # the end is read from the store: looking seldom takes no CPU from the fleet
        finished = max([max(d.updated_at for d in await store.list_deliveries(a, "done", events)) for a in ACCOUNTS])
        busy_cpu = sum(cpu_seconds(p.pid) for p in processes) - idle_cpu
        return events / (finished - started), busy_cpu * 1000 / events
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        await store.close()


def spread(runs: list[tuple[float, float]]) -> str:
    rates, cpu = [r for r, _ in runs], [c for _, c in runs]
    return (
        f"{statistics.median(rates):7.1f} deliveries/s (min {min(rates):.1f}, max {max(rates):.1f});"
        f" replicas' CPU {statistics.median(cpu):.1f} ms per delivery"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=640, help="backlog size (640 = 20 rounds of 4 x 8 workers)")
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per vendor call")
    parser.add_argument("--workers", type=int, default=8, help="LEDGERBRIDGE_WORKERS per replica (8: as in deploy.md)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = os.environ | {
        "LEDGERBRIDGE_ADMIN_TOKEN": "bench-admin-token-0123456789",
        "LEDGERBRIDGE_BLOCK_PLUGINS": "quickbooks,crmconnect",
        "LEDGERBRIDGE_WORKERS": str(args.workers),
        "LEDGERBRIDGE_BENCH_LATENCY": str(args.latency),
    }
    ceiling = args.workers / args.latency
    print(
        f"{args.events} payments over {len(ACCOUNTS)} accounts, one object each; vendor latency"
        f" {args.latency * 1000:.0f} ms; {args.workers} workers per replica (ceiling {ceiling:.0f}/s per replica);"
        f" {args.runs} runs each; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f};"
        f" Python {platform.python_version()}"
    )
    baseline: list[tuple[float, float]] = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "baseline.db"
            sqlite_env = env | {"LEDGERBRIDGE_DATABASE": str(path)}
            baseline.append(await run_fleet(lambda p=path: SQLiteStore(p), sqlite_env, 1, args.events))
    print(f"SQLite, 1 replica:      {spread(baseline)}")
    runs: dict[int, list[tuple[float, float]]] = {}
    with running_cluster() as cluster:
        with psycopg.connect(cluster.create_database()) as db:
            print(f"PostgreSQL {db.info.parameter_status('server_version')} on loopback (tests/postgres_cluster.py)")
        for replicas in (1, 2, 4):
            for _ in range(args.runs):
                url = cluster.create_database()
                pg_env = env | {"LEDGERBRIDGE_DATABASE_URL": url}
                result = await run_fleet(lambda u=url: PostgresStore(u), pg_env, replicas, args.events)
                runs.setdefault(replicas, []).append(result)
            print(f"PostgreSQL, {replicas} replica{'s' if replicas > 1 else ' '}: {spread(runs[replicas])}")
    rates = {n: [rate for rate, _ in results] for n, results in runs.items()}
    one, four = statistics.median(rates[1]), statistics.median(rates[4])
    print(
        f"4 replicas / 1 replica: {four / one:.2f} (target >= 3.5; min/max runs {min(rates[4]) / max(rates[1]):.2f}"
        f" to {max(rates[4]) / min(rates[1]):.2f}); PostgreSQL 1 / SQLite 1: {one / statistics.median(r for r, _ in baseline):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
