"""Claim cost against the size of the deliveries table: SQLite, and PostgreSQL when it is installed.

For each store and table size it seeds one shape of backlog straight into the database (fast), then times
`claim_deliveries(limit=8)` — what each dispatcher wake does — and releases the claim untimed, 30 times.
Shapes (the rows that are *not* claimable are what a slow plan wades through):

    backlog   every row pending and claimable, one object each
    leased    every row leased to a live worker, 100 claimable after them
    chain     every row about one object (its head leased), 100 claimable after them
    later     every row retrying in an hour, 100 claimable after them
    paused    every row for a paused plugin, 100 claimable after them
    done      every row done (history is never pruned), 100 claimable after them

    .venv/bin/python bench/claims.py [--sizes 10000 1000000] [--shapes backlog done] [--postgres-url URL]

Without --postgres-url it starts a throwaway PostgreSQL cluster when the server is installed
(scripts/install-postgres), else measures SQLite alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from ledgerbridge.store import SQLiteStore, Store
from ledgerbridge.store.postgres import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.postgres_cluster import PostgresUnavailable, running_cluster

NOW = 1_000_000.0
SHAPES = ("backlog", "leased", "chain", "later", "paused", "done")
CLAIMABLE_AFTER = 100
REPEATS = 30
SQLITE_PAYLOAD = "X'7B7D'"
POSTGRES_PAYLOAD = "'\\x7b7d'::bytea"

# (plugin, object_key, state, next_attempt_at, lease_owner, lease_until) of the N seeded rows, per shape, as SQL
# expressions of x (1..N); the 100 claimable rows that follow are ('books', 'free:x', 'pending', NOW, NULL, NULL)
SEEDS = {
    "backlog": ("'books'", "'k:' || x", "'pending'", f"{NOW}", "NULL", "NULL"),
    "leased": ("'books'", "'k:' || x", "'pending'", f"{NOW}", "'other-worker'", f"{NOW + 3600}"),
    "chain": (
        "'books'",
        "'one-object'",
        "'pending'",
        f"{NOW}",
        "CASE WHEN x = 1 THEN 'other-worker' END",
        f"CASE WHEN x = 1 THEN {NOW + 3600} END",
    ),
    "later": ("'books'", "'k:' || x", "'pending'", f"{NOW + 3600}", "NULL", "NULL"),
    "paused": ("'paused'", "'k:' || x", "'pending'", f"{NOW}", "NULL", "NULL"),
    "done": ("'books'", "'k:' || x", "'done'", f"{NOW}", "NULL", "NULL"),
}


def seed_sql(shape: str, numbers: str, payload: str) -> list[str]:
    plugin, key, state, due, owner, until = SEEDS[shape]
    return [
        "INSERT INTO accounts(id, name, created_at) VALUES ('acme', 'Acme', 0)",
        "INSERT INTO plugin_accounts(account_id, plugin, enabled, paused_reason) VALUES"
        " ('acme', 'paused', TRUE, 'reconnect'), ('acme', 'books', TRUE, NULL)",
        "INSERT INTO events(account_id, source, external_id, type, object_key, payload, received_at)"
        f" SELECT 'acme', 'bench', 'e' || x, 'payment', 'k:' || x, {payload}, {NOW} FROM {numbers}",
        "INSERT INTO deliveries(event_seq, account_id, plugin, event_type, object_key, state, next_attempt_at,"
        " lease_owner, lease_until, updated_at)"
        f" SELECT x, 'acme', {plugin}, 'payment', {key}, {state}, {due}, {owner}, {until}, {NOW} FROM {numbers}",
    ]


def free_rows_sql(size: int, payload: str) -> tuple[list[str], tuple[int, int]]:
    first, last = size + 1, size + CLAIMABLE_AFTER
    return [
        "INSERT INTO events(account_id, source, external_id, type, object_key, payload, received_at)"
        f" SELECT 'acme', 'bench', 'f' || x, 'payment', 'free:' || x, {payload}, {NOW} FROM {{numbers}}",
        "INSERT INTO deliveries(event_seq, account_id, plugin, event_type, object_key, next_attempt_at, updated_at)"
        f" SELECT x, 'acme', 'books', 'payment', 'free:' || x, {NOW}, {NOW} FROM {{numbers}}",
    ], (first, last)


# seeded rows bypass the store, so mark each object's oldest pending delivery ready as the store would
READY_SQL = (
    "UPDATE deliveries SET ready_at = {greatest}(next_attempt_at, COALESCE(lease_until, 0)) WHERE state = 'pending'"
    " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.account_id = deliveries.account_id"
    " AND o.plugin = deliveries.plugin AND o.object_key = deliveries.object_key AND o.state = 'pending'"
    " AND o.id < deliveries.id)"
    " AND NOT EXISTS (SELECT 1 FROM plugin_accounts p WHERE p.account_id = deliveries.account_id"
    " AND p.plugin = deliveries.plugin AND p.paused_reason IS NOT NULL)"
)


def seed_sqlite(path: Path, shape: str, size: int) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        numbers = f"(WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < {size}) SELECT x FROM n)"
        for sql in seed_sql(shape, numbers, SQLITE_PAYLOAD):
            db.execute(sql)
        statements, (first, last) = free_rows_sql(size, SQLITE_PAYLOAD)
        free = (
            f"(WITH RECURSIVE n(x) AS (SELECT {first} UNION ALL SELECT x + 1 FROM n WHERE x < {last}) SELECT x FROM n)"
        )
        for sql in statements:
            db.execute(sql.replace("{numbers}", free))
        db.execute(READY_SQL.format(greatest="MAX"))
        db.commit()  # no ANALYZE: the server never runs one


def seed_postgres(url: str, shape: str, size: int) -> None:
    with psycopg.connect(url, autocommit=True) as db:
        for sql in seed_sql(shape, f"generate_series(1, {size}) AS x", POSTGRES_PAYLOAD):
            db.execute(sql)  # type: ignore[call-overload]
        statements, (first, last) = free_rows_sql(size, POSTGRES_PAYLOAD)
        for sql in statements:
            db.execute(sql.replace("{numbers}", f"generate_series({first}, {last}) AS x"))  # type: ignore[call-overload]
        db.execute("ANALYZE")  # as autovacuum does on a table that grew this much
        db.execute(READY_SQL.format(greatest="GREATEST"))  # type: ignore[call-overload]


async def time_claims(store: Store) -> list[float]:
    timings = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        claimed = await store.claim_deliveries("bench", 8, 60, NOW)
        timings.append((time.perf_counter() - started) * 1000)
        if len(claimed) != 8:
            raise SystemExit(f"claimed {len(claimed)} deliveries, expected 8")
        await store.release_leases("bench")
    return timings


async def measure(make_store: object, seed: object, shape: str, size: int) -> float:
    store: Store = make_store()  # type: ignore[operator]
    await store.open()  # creates the schema
    seed(shape, size)  # type: ignore[operator]
    try:
        return statistics.median(await time_claims(store))
    finally:
        await store.close()


async def wake_latency(url: str, rounds: int = 50) -> list[float]:
    """Milliseconds from the start of one replica's append (its commit included) to another replica's wake-up."""
    from ledgerbridge.store import NewEvent

    writer, listener = PostgresStore(url), PostgresStore(url)
    woken = asyncio.Event()
    listener.watch(woken.set)
    await writer.open()
    await listener.open()
    await writer.create_account("wake", "Wake")
    await asyncio.sleep(0.2)
    latencies = []
    try:
        for i in range(rounds):
            woken.clear()
            event = NewEvent(
                account_id="wake",
                source="bench",
                external_id=f"w{i}",
                type="t",
                object_key=f"k{i}",
                payload=b"{}",
                consumers=("books",),
            )
            started = time.perf_counter()
            await writer.append_events([event], NOW)
            await asyncio.wait_for(woken.wait(), 5)
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await writer.close()
        await listener.close()
    return latencies


@contextlib.contextmanager
def postgres_databases(url: str | None) -> Iterator[object | None]:
    if url:
        yield lambda: url
        return
    try:
        with running_cluster() as cluster:
            yield cluster.create_database
    except PostgresUnavailable as exc:
        print(f"PostgreSQL: not measured ({exc})")
        yield None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", choices=SHAPES, default=list(SHAPES))
    parser.add_argument("--postgres-url", help="an empty database per measurement is created when omitted")
    args = parser.parse_args()
    print(
        f"claim_deliveries(limit=8): median of {REPEATS} claims, ms; {CLAIMABLE_AFTER} claimable rows after the seeded ones"
    )
    with tempfile.TemporaryDirectory() as folder, postgres_databases(args.postgres_url) as new_database:
        stores: list[tuple[str, object]] = [("sqlite", None)]
        if new_database is not None:
            stores.append(("postgresql", new_database))
        print(f"{'store':<11} {'shape':<8} " + " ".join(f"{size:>12,}" for size in args.sizes) + "   ratio")
        for name, databases in stores:
            for shape in args.shapes:
                medians = []
                for size in args.sizes:
                    if name == "sqlite":
                        path = Path(folder) / f"{shape}-{size}.db"
                        cost = await measure(
                            lambda p=path: SQLiteStore(p), lambda s, n, p=path: seed_sqlite(p, s, n), shape, size
                        )
                        path.unlink()
                    else:
                        url = databases()  # type: ignore[operator]
                        cost = await measure(
                            lambda u=url: PostgresStore(u), lambda s, n, u=url: seed_postgres(u, s, n), shape, size
                        )
                    medians.append(cost)
                ratio = medians[-1] / medians[0]
                print(
                    f"{name:<11} {shape:<8} " + " ".join(f"{m:>12.2f}" for m in medians) + f"   {ratio:5.1f}x",
                    flush=True,
                )
        if new_database is not None:
            wakes = sorted(await wake_latency(new_database()))  # type: ignore[operator]
            print(
                f"PostgreSQL wake of an idle replica by NOTIFY, ms from the start of the append (commit included): median {statistics.median(wakes):.2f},"
                f" max {wakes[-1]:.2f} ({len(wakes)} appends); a poll every poll_interval_seconds (1 s) waits 500 ms"
                " on average"
            )


if __name__ == "__main__":
    asyncio.run(main())
