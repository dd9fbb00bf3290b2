"""The shared store: PostgreSQL through psycopg 3 and its async connection pool, for several replicas.

Every replica runs the same dispatcher against the same tables. What keeps them from stepping on each other:

- claims lock their rows with `FOR UPDATE SKIP LOCKED`, so two replicas never lease the same delivery and a
  claim never waits behind another;
- only the oldest pending delivery of each (account, plugin, object key) is claimable, as in SQLite: it alone
  carries a `ready_at` (NULL too while its plugin is paused), and claims read the `deliveries_ready` index
  from its start, so their cost does not grow with the backlog behind;
- whatever moves an object's oldest delivery (an append, a finish, a replay) first takes a transaction-scoped
  advisory lock on the object, then a share lock on its plugin's row (which a pause or resume locks for
  update), so a key's delivery ids follow commit order and `ready_at` stays on the right row;
- a delivery that adds work sends `NOTIFY ledgerbridge_work` in its transaction; each store LISTENs on a
  connection of its own and calls its watchers, so idle workers of every replica wake at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import msgspec
import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ledgerbridge.errors import ExternalIdTaken
from ledgerbridge.store.base import (
    Account,
    ActivityEntry,
    Backlog,
    ClaimedDelivery,
    Delivery,
    DeliveryState,
    DeliveryTally,
    EventRecord,
    Link,
    NewEvent,
    Nonce,
    PluginState,
)
from ledgerbridge.store.migrations import POSTGRES_MIGRATIONS, statements
from ledgerbridge.store.rows import (
    ACCOUNT_COLUMNS,
    DELIVERY_COLUMNS,
    DELIVERY_WIDTH,
    EVENT_COLUMNS,
    PLUGIN_STATE_COLUMNS,
    account,
    activity_entry,
    delivery,
    event,
    link,
    link_values,
    nonce,
    plugin_state,
    tally,
)

logger = logging.getLogger("ledgerbridge.store")

WORK_CHANNEL = "ledgerbridge_work"
_CLAIMED_KEPT = 10_000  # objects of claimed deliveries remembered (finishing a forgotten one looks it up)
_MIGRATION_LOCK = 0x1ED6E7B71D6E  # any constant: serialises replicas migrating the same database
_json_encode = msgspec.json.Encoder().encode

Connection = AsyncConnection[TupleRow]
Params = Sequence[Any] | Mapping[str, Any]


_READY = "GREATEST(next_attempt_at, COALESCE(lease_until, 0))"
# the head of an object's pending deliveries, the only one that may be claimed: the one under way if any, else
# the oldest (a delivery replayed or sent on request behind one under way waits for it)
_HEAD = (
    "(SELECT o.id FROM deliveries o WHERE o.account_id = {0}.account_id AND o.plugin = {0}.plugin"
    " AND o.object_key = {0}.object_key AND o.state = 'pending' ORDER BY o.lease_owner IS NULL, o.id LIMIT 1)"
)
_KEEP_READY = "CASE WHEN ready_at IS NULL THEN NULL ELSE {} END"  # a change of time on a row that may be claimed
# the ready deliveries a claim may take, ranked so accounts share the workers: each account's first rows take
# turns, and an account with deliveries in flight waits that many turns; twice the limit per account, so a claim
# still fills up when another replica holds some of them
_FAIR_TURNS = (
    "turns AS MATERIALIZED (SELECT r.id, row_number() OVER (ORDER BY b.n + r.turn, r.ready_at, r.id) AS rank"
    " FROM accounts a"
    " CROSS JOIN LATERAL (SELECT count(*) AS n FROM (SELECT 1 FROM deliveries l WHERE l.account_id = a.id"
    " AND l.lease_owner IS NOT NULL AND l.lease_until > %(now)s LIMIT %(limit)s) x) b"
    " CROSS JOIN LATERAL (SELECT id, ready_at, row_number() OVER (ORDER BY ready_at, id) AS turn FROM deliveries"
    " WHERE account_id = a.id AND ready_at <= %(now)s ORDER BY ready_at, id LIMIT %(limit)s * 2) r)"
)


# make the head of an object's pending deliveries (the one under way if any, else the oldest) the only one with a
# ready_at, in one statement: the pending rows are locked in id order first, so a claim under way commits first
_READY_HEAD = (
    "WITH pending AS (SELECT id, lease_owner IS NOT NULL AS leased FROM deliveries WHERE account_id = %(a)s"
    " AND plugin = %(p)s AND object_key = %(k)s AND state = 'pending' ORDER BY id FOR UPDATE),"
    " head AS (SELECT id FROM pending ORDER BY leased DESC, id LIMIT 1)"
    " UPDATE deliveries d SET ready_at = CASE WHEN d.id <> (SELECT id FROM head) THEN NULL"
    " WHEN EXISTS (SELECT 1 FROM plugin_accounts pa WHERE pa.account_id = d.account_id AND pa.plugin = d.plugin"
    f" AND pa.paused_reason IS NOT NULL) THEN NULL ELSE {_READY} END"
    " FROM pending p WHERE d.id = p.id AND (d.id = (SELECT id FROM head) OR d.ready_at IS NOT NULL)"
)


def _where(url: str) -> str:
    """host:port/dbname of a connection URL, without its password."""
    info = conninfo_to_dict(url)
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _key_lock(account_id: str, plugin: str, object_key: str) -> int:
    digest = hashlib.blake2b(f"{account_id}\0{plugin}\0{object_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _name_lock(kind: str, name: str) -> int:
    digest = hashlib.blake2b(f"{kind}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore:
    shared_by_replicas = True

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 30.0) -> None:
        self.url = url
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._watchers: list[Callable[[], None]] = []
        self._listener: asyncio.Task[None] | None = None
        # the object of each delivery claimed through this handle, so finishing it needs no lookup first
        self._claimed: dict[int, tuple[str, str, str]] = {}
        # the inbox's own connection: batches of events go out back to back, never waiting for the pool
        self._inbox: Connection | None = None
        self._inbox_lock = asyncio.Lock()

    # lifecycle

    async def open(self) -> None:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self.url,
            min_size=self._min_size,
            max_size=self._max_size,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            open=False,
            name="ledgerbridge",
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise ConnectionError(
                f"PostgreSQL {_where(self.url)} accepted no connection within {self._connect_timeout:.0f} s"
                " (check LEDGERBRIDGE_DATABASE_URL and that the server is up)"
            ) from exc
        self._pool = pool
        await self._migrate()
        if self._watchers:
            self._start_listener()

    async def close(self) -> None:
        async with self._inbox_lock:
            if self._inbox is not None:
                await self._inbox.close()
                self._inbox = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever any replica adds work (new deliveries, a replay, a resume, released leases)."""
        self._watchers.append(callback)
        if self._pool is not None and self._listener is None:
            self._start_listener()

    def _start_listener(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="ledgerbridge-store-listener")

    async def _listen(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(self.url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {WORK_CHANNEL}")
                    self._notify_watchers()  # anything added while not listening
                    async for _ in conn.notifies():
                        self._notify_watchers()
            except psycopg.Error as exc:
                logger.warning("listening for new work failed (%s); polling until it reconnects", exc)
                await asyncio.sleep(1.0)

    def _notify_watchers(self) -> None:
        for callback in self._watchers:
            callback()

    async def _migrate(self) -> None:
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
            if row is None:
                await conn.execute("INSERT INTO schema_version(version) VALUES (0)")
            version = row[0] if row else 0
            for number, script in enumerate(POSTGRES_MIGRATIONS[version:], start=version + 1):
                for statement in statements(script):
                    await conn.execute(statement)
                await conn.execute("UPDATE schema_version SET version = %s", (number,))

    @property
    def _connections(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    @contextlib.asynccontextmanager
    async def _inbox_connection(self) -> AsyncIterator[Connection]:
        """The inbox's connection, one batch at a time; a connection that failed is replaced by the next batch
        (the failed batch itself fails: its events were not acknowledged, and their senders retry)."""
        async with self._inbox_lock:
            self._connections  # noqa: B018  (refuses a closed store)
            if self._inbox is None or self._inbox.closed or self._inbox.broken:
                self._inbox = await AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout))
                )
            try:
                yield self._inbox
            except (psycopg.OperationalError, psycopg.InterfaceError):
                with contextlib.suppress(Exception):
                    await self._inbox.close()
                self._inbox = None
                raise

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[Connection]:
        async with self._connections.connection() as conn, conn.transaction():
            yield conn

    async def _write(self, sql: str, params: Params = ()) -> int:
        async with self._connections.connection() as conn:
            cursor = await conn.execute(sql, params)
            return cursor.rowcount

    async def _fetch_one(self, sql: str, params: Params = ()) -> Any:
        async with self._connections.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def _fetch_all(self, sql: str, params: Params = ()) -> list[Any]:
        async with self._connections.connection() as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    @staticmethod
    async def _wake_replicas(conn: Connection) -> None:
        await conn.execute(f"NOTIFY {WORK_CHANNEL}")

    # accounts

    async def create_account(self, account_id: str, name: str) -> Account:
        now = time.time()
        try:
            await self._write("INSERT INTO accounts(id, name, created_at) VALUES (%s, %s, %s)", (account_id, name, now))
        except psycopg.errors.UniqueViolation as exc:
            raise KeyError(f"account {account_id!r} already exists") from exc
        return Account(id=account_id, name=name, created_at=now)

    async def get_account(self, account_id: str) -> Account | None:
        row = await self._fetch_one(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = %s", (account_id,))
        return account(row) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self._fetch_all(f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id")
        return [account(r) for r in rows]

    async def set_backfill_since(self, account_id: str, since: float | None) -> None:
        await self._write("UPDATE accounts SET backfill_since = %s WHERE id = %s", (since, account_id))

    async def rename_account(self, account_id: str, name: str) -> bool:
        return await self._write("UPDATE accounts SET name = %s WHERE id = %s", (name, account_id)) == 1

    async def delete_account(self, account_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM deliveries WHERE account_id = %s", (account_id,))
            cursor = await conn.execute("DELETE FROM accounts WHERE id = %s", (account_id,))
            return cursor.rowcount == 1

    # plugin state

    async def get_plugin_state(self, account_id: str, plugin: str) -> PluginState:
        row = await self._fetch_one(
            f"SELECT {PLUGIN_STATE_COLUMNS} FROM plugin_accounts WHERE account_id = %s AND plugin = %s",
            (account_id, plugin),
        )
        if row is None:
            return PluginState(
                account_id=account_id, plugin=plugin, enabled=False, settings={}, external_id=None, paused_reason=None
            )
        return plugin_state(account_id, plugin, row)

    async def list_plugin_states(self, account_id: str) -> list[PluginState]:
        rows = await self._fetch_all(
            f"SELECT plugin, {PLUGIN_STATE_COLUMNS} FROM plugin_accounts WHERE account_id = %s ORDER BY plugin",
            (account_id,),
        )
        return [plugin_state(account_id, r[0], r[1:]) for r in rows]

    async def _upsert_plugin_column(self, account_id: str, plugin: str, column: str, value: Any) -> None:
        await self._write(
            f"INSERT INTO plugin_accounts(account_id, plugin, {column}) VALUES (%s, %s, %s)"
            f" ON CONFLICT(account_id, plugin) DO UPDATE SET {column} = excluded.{column}",
            (account_id, plugin, value),
        )

    async def set_plugin_enabled(self, account_id: str, plugin: str, enabled: bool) -> None:
        await self._upsert_plugin_column(account_id, plugin, "enabled", enabled)

    async def set_plugin_settings(self, account_id: str, plugin: str, settings: dict[str, Any]) -> None:
        await self._upsert_plugin_column(account_id, plugin, "settings", _json_encode(settings).decode())

    async def set_external_id(self, account_id: str, plugin: str, external_id: str | None) -> None:
        try:
            await self._upsert_plugin_column(account_id, plugin, "external_id", external_id)
        except psycopg.errors.UniqueViolation as exc:
            raise ExternalIdTaken(f"{plugin} {external_id!r} is already bound to another account") from exc

    async def find_account_by_external_id(self, plugin: str, external_id: str) -> str | None:
        row = await self._fetch_one(
            "SELECT account_id FROM plugin_accounts WHERE plugin = %s AND external_id = %s", (plugin, external_id)
        )
        return row[0] if row else None

    async def set_paused(self, account_id: str, plugin: str, reason: str | None) -> None:
        async with self._tx() as conn:
            cursor = await conn.execute(
                "SELECT paused_reason FROM plugin_accounts WHERE account_id = %s AND plugin = %s FOR UPDATE",
                (account_id, plugin),
            )
            before = await cursor.fetchone()
            await conn.execute(
                "INSERT INTO plugin_accounts(account_id, plugin, paused_reason) VALUES (%s, %s, %s)"
                " ON CONFLICT(account_id, plugin) DO UPDATE SET paused_reason = excluded.paused_reason",
                (account_id, plugin, reason),
            )
            if reason is not None:
                # rows locked in id order, as release_leases locks them, so the two never wait for each other
                await conn.execute(
                    "UPDATE deliveries SET ready_at = NULL WHERE id IN (SELECT id FROM deliveries"
                    " WHERE account_id = %s AND plugin = %s AND state = 'pending' AND ready_at IS NOT NULL"
                    " ORDER BY id FOR UPDATE)",
                    (account_id, plugin),
                )
            elif before is not None and before[0] is not None:
                await conn.execute(
                    f"UPDATE deliveries d SET ready_at = {_READY} WHERE id IN (SELECT id FROM deliveries"
                    " WHERE account_id = %s AND plugin = %s AND state = 'pending' ORDER BY id FOR UPDATE)"
                    f" AND d.id = {_HEAD.format('d')}",
                    (account_id, plugin),
                )
                await self._wake_replicas(conn)

    async def mark_connected(self, account_id: str, plugin: str, at: float) -> float:
        row = await self._fetch_one(
            "INSERT INTO plugin_accounts(account_id, plugin, connected_at) VALUES (%s, %s, %s)"
            " ON CONFLICT(account_id, plugin) DO UPDATE"
            " SET connected_at = COALESCE(plugin_accounts.connected_at, excluded.connected_at) RETURNING connected_at",
            (account_id, plugin, at),
        )
        return float(row[0])

    async def enabled_plugins(self, account_id: str) -> frozenset[str]:
        rows = await self._fetch_all(
            "SELECT plugin FROM plugin_accounts WHERE account_id = %s AND enabled", (account_id,)
        )
        return frozenset(r[0] for r in rows)

    # secrets

    async def get_secret(self, account_id: str, plugin: str, name: str) -> bytes | None:
        row = await self._fetch_one(
            "SELECT ciphertext FROM secrets WHERE account_id = %s AND plugin = %s AND name = %s",
            (account_id, plugin, name),
        )
        return bytes(row[0]) if row else None

    async def put_secret(self, account_id: str, plugin: str, name: str, ciphertext: bytes) -> None:
        await self._write(
            "INSERT INTO secrets(account_id, plugin, name, ciphertext) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT(account_id, plugin, name) DO UPDATE SET ciphertext = excluded.ciphertext",
            (account_id, plugin, name, ciphertext),
        )

    async def delete_secret(self, account_id: str, plugin: str, name: str) -> None:
        await self._write(
            "DELETE FROM secrets WHERE account_id = %s AND plugin = %s AND name = %s", (account_id, plugin, name)
        )

    # inbox and deliveries

    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        """Store new events and their deliveries in one transaction; True where an event was new."""
        if not events:
            return []
        reused = self._inbox is not None
        try:
            return await self._append_events(events, now)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            if not reused:
                raise
            # the kept connection had died (a server restart, an idle timeout): once more on a new one. Nothing
            # of a failed transaction is kept, and a repeat of one that did commit is a no-op (ON CONFLICT)
            logger.warning("the inbox's database connection was lost; writing the batch on a new one")
            return await self._append_events(events, now)

    async def _append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        key_locks = sorted({_key_lock(e.account_id, p, e.object_key) for e in events for p in e.consumers})
        # Pipelined: BEGIN, the locks and the events' INSERT go out together, and the deliveries, the NOTIFY and
        # COMMIT together once the new events' numbers are back: two round trips a batch instead of eight.
        async with self._inbox_connection() as conn, conn.pipeline(), conn.transaction():
            if key_locks:
                await conn.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS t(k)", (key_locks,))
                pairs = sorted({(e.account_id, p) for e in events for p in e.consumers})
                await self._hold_pause_states(conn, pairs)
            cursor = await conn.execute(
                "INSERT INTO events(account_id, source, external_id, type, object_key, payload, received_at,"
                " request_id) SELECT a, s, x, t, k, p, %s, i FROM unnest(%s::text[], %s::text[], %s::text[],"
                " %s::text[], %s::text[], %s::bytea[], %s::text[]) WITH ORDINALITY AS u(a, s, x, t, k, p, i, n)"
                " ORDER BY n"
                " ON CONFLICT (account_id, source, external_id) DO NOTHING"
                " RETURNING seq, account_id, source, external_id",
                (
                    now,
                    [e.account_id for e in events],
                    [e.source for e in events],
                    [e.external_id for e in events],
                    [e.type for e in events],
                    [e.object_key for e in events],
                    [e.payload for e in events],
                    [e.request_id for e in events],
                ),
            )
            seqs = {(r[1], r[2], r[3]): r[0] for r in await cursor.fetchall()}
            planned: set[tuple[str, str, str]] = set()
            new_events = []
            for e in events:
                key = (e.account_id, e.source, e.external_id)
                if key in seqs and key not in planned:
                    planned.add(key)
                    new_events.append((seqs[key], e))
            # pending ones first, then the skipped ones, numbered as the SQLite store numbers them
            deliveries: list[tuple[int, str, str, str, str, str, str | None]] = [
                (seq, e.account_id, plugin, e.type, e.object_key, "pending", None)
                for seq, e in new_events
                for plugin in e.consumers
            ] + [
                (seq, e.account_id, target, e.type, e.object_key, "skipped", reason)
                for seq, e in new_events
                for target, reason in e.skipped
            ]
            if deliveries:
                await conn.execute(
                    "INSERT INTO deliveries(event_seq, account_id, plugin, event_type, object_key, state, last_error,"
                    " next_attempt_at, updated_at, ready_at) SELECT q, a, p, t, k, s, r, %(now)s, %(now)s,"
                    " CASE WHEN s = 'pending'"
                    "  AND row_number() OVER (PARTITION BY a, p, k, s = 'pending' ORDER BY n) = 1"
                    "  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.account_id = a AND o.plugin = p"
                    "   AND o.object_key = k AND o.state = 'pending')"
                    "  AND NOT EXISTS (SELECT 1 FROM plugin_accounts pa WHERE pa.account_id = a AND pa.plugin = p"
                    "   AND pa.paused_reason IS NOT NULL) THEN %(now)s::double precision END"
                    " FROM unnest(%(q)s::bigint[], %(a)s::text[], %(p)s::text[], %(t)s::text[], %(k)s::text[],"
                    " %(s)s::text[], %(r)s::text[]) WITH ORDINALITY AS u(q, a, p, t, k, s, r, n) ORDER BY n"
                    " ON CONFLICT (event_seq, plugin) DO NOTHING",
                    {"now": now} | {name: [d[i] for d in deliveries] for i, name in enumerate("qaptksr")},
                )
                await self._wake_replicas(conn)
        seen: set[tuple[str, str, str]] = set()
        result = []
        for e in events:
            key = (e.account_id, e.source, e.external_id)
            result.append(key in seqs and key not in seen)
            seen.add(key)
        return result

    async def claim_deliveries(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[ClaimedDelivery]:
        rows = await self._fetch_all(
            f"WITH {_FAIR_TURNS}, candidates AS ("
            "  SELECT d.id FROM turns t JOIN deliveries d ON d.id = t.id WHERE d.ready_at <= %(now)s"
            "  ORDER BY t.rank LIMIT %(limit)s FOR UPDATE OF d SKIP LOCKED"
            "), claimed AS ("
            "  UPDATE deliveries d SET lease_owner = %(owner)s, lease_until = %(until)s, ready_at = %(until)s,"
            "  attempts = d.attempts + 1, updated_at = %(now)s"
            "  FROM candidates c WHERE d.id = c.id RETURNING d.*"
            f") SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS} FROM claimed d JOIN events e ON e.seq = d.event_seq"
            " ORDER BY d.id",
            {"now": now, "limit": limit, "owner": owner, "until": now + lease_seconds},
        )
        claimed = [
            ClaimedDelivery(delivery=delivery(r[:DELIVERY_WIDTH]), event=event(r[DELIVERY_WIDTH:])) for r in rows
        ]
        if len(self._claimed) > _CLAIMED_KEPT:
            self._claimed.clear()
        for c in claimed:
            self._claimed[c.delivery.id] = (c.delivery.account_id, c.delivery.plugin, c.delivery.object_key)
        return claimed

    async def finish_delivery(
        self, delivery_id: int, owner: str, state: DeliveryState, error: str | None, now: float
    ) -> bool:
        found = self._claimed.pop(delivery_id, None)
        if found is None:  # claimed through another handle: its object, which a delivery never changes
            row = await self._fetch_one(
                "SELECT account_id, plugin, object_key FROM deliveries WHERE id = %s", (delivery_id,)
            )
            if row is None:
                return False
            found = (row[0], row[1], row[2])
        account_id, plugin, object_key = found
        # the hot path of every delivery: its statements go out together, COMMIT included (psycopg's pipeline
        # mode), so finishing costs one round trip; the object's next delivery is made claimable by one statement
        # that is right whether or not this one still held its lease
        async with self._connections.connection() as conn, conn.pipeline():
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key_lock(account_id, plugin, object_key),))
                await self._hold_pause_states(conn, [(account_id, plugin)])
                updated = await conn.execute(
                    "UPDATE deliveries SET state = %s, last_error = %s, lease_owner = NULL, lease_until = NULL,"
                    " ready_at = NULL, updated_at = %s WHERE id = %s AND lease_owner = %s AND state = 'pending'"
                    " RETURNING id",
                    (state, error, now, delivery_id, owner),
                )
                await conn.execute(_READY_HEAD, {"a": account_id, "p": plugin, "k": object_key})
            return await updated.fetchone() is not None

    async def _lock_object_of(self, conn: Connection, delivery_id: int) -> bool:
        """Serialise with appends and pauses touching the delivery's object; False if there is no such delivery.

        In this order everywhere: the object's advisory lock, then its plugin_accounts row.
        """
        cursor = await conn.execute(
            "SELECT account_id, plugin, object_key FROM deliveries WHERE id = %s", (delivery_id,)
        )
        row = await cursor.fetchone()
        if row is None:
            return False
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key_lock(*row),))
        await self._hold_pause_states(conn, [(row[0], row[1])])
        return True

    @staticmethod
    async def _hold_pause_states(conn: Connection, pairs: Sequence[tuple[str, str]]) -> None:
        """Share-lock the (account, plugin) rows, so a pause or resume waits for this transaction and vice versa."""
        await conn.execute(
            "SELECT 1 FROM plugin_accounts WHERE (account_id, plugin) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[])) ORDER BY account_id, plugin FOR SHARE",
            ([a for a, _ in pairs], [p for _, p in pairs]),
        )

    @staticmethod
    async def _ready_oldest(conn: Connection, account_id: str, plugin: str, object_key: str) -> None:
        await conn.execute(_READY_HEAD, {"a": account_id, "p": plugin, "k": object_key})

    async def schedule_retry(
        self, delivery_id: int, owner: str, next_attempt_at: float, error: str, now: float
    ) -> bool:
        self._claimed.pop(delivery_id, None)
        changed = await self._write(
            "UPDATE deliveries SET next_attempt_at = %s, last_error = %s, lease_owner = NULL, lease_until = NULL,"
            f" ready_at = {_KEEP_READY.format('%s')}, updated_at = %s WHERE id = %s AND lease_owner = %s"
            " AND state = 'pending'",
            (next_attempt_at, error, next_attempt_at, now, delivery_id, owner),
        )
        return changed == 1

    async def release_delivery(self, delivery_id: int, owner: str, *, refund_attempt: bool, now: float) -> bool:
        self._claimed.pop(delivery_id, None)
        async with self._tx() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = attempts - %s,"
                f" ready_at = {_KEEP_READY.format('next_attempt_at')}, updated_at = %s"
                " WHERE id = %s AND lease_owner = %s AND state = 'pending'",
                (int(refund_attempt), now, delivery_id, owner),
            )
            if cursor.rowcount == 1:
                await self._wake_replicas(conn)
            return cursor.rowcount == 1

    async def release_leases(self, owner: str) -> int:
        async with self._tx() as conn:
            cursor = await conn.execute(
                "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = GREATEST(attempts - 1, 0),"
                f" ready_at = {_KEEP_READY.format('next_attempt_at')} WHERE id IN (SELECT id FROM deliveries"
                f" WHERE lease_owner = %s AND state = 'pending' ORDER BY id FOR UPDATE)",
                (owner,),
            )
            if cursor.rowcount:
                await self._wake_replicas(conn)
            return cursor.rowcount

    async def renew_leases(self, owner: str, delivery_ids: Sequence[int], lease_until: float) -> int:
        if not delivery_ids:
            return 0
        return await self._write(
            f"UPDATE deliveries SET lease_until = %s, ready_at = {_KEEP_READY.format('%s')} WHERE id IN (SELECT id"
            " FROM deliveries WHERE lease_owner = %s AND state = 'pending' AND id = ANY(%s::bigint[])"
            " ORDER BY id FOR UPDATE)",
            (lease_until, lease_until, owner, list(delivery_ids)),
        )

    async def next_due_at(self) -> float | None:
        row = await self._fetch_one("SELECT MIN(ready_at) FROM deliveries WHERE ready_at IS NOT NULL")
        return row[0] if row and row[0] is not None else None

    async def backlog(self) -> Backlog:
        row = await self._fetch_one("SELECT COUNT(*), COUNT(lease_owner) FROM deliveries WHERE state = 'pending'")
        pending, leased = (int(row[0]), int(row[1])) if row else (0, 0)
        paused = await self._fetch_all(
            "SELECT plugin, COUNT(*) FROM plugin_accounts WHERE paused_reason IS NOT NULL GROUP BY plugin"
        )
        return Backlog(pending=pending - leased, leased=leased, paused={r[0]: int(r[1]) for r in paused})

    async def list_deliveries(
        self,
        account_id: str,
        state: DeliveryState | None = None,
        limit: int = 100,
        *,
        event_type: str | None = None,
        object_key: str | None = None,
        exclude_type: str | None = None,
        plugin: str | None = None,
    ) -> list[Delivery]:
        where, params = "d.account_id = %s", [account_id]
        filters = (("d.state", state), ("d.event_type", event_type), ("d.object_key", object_key), ("d.plugin", plugin))
        for column, value in filters:
            if value is not None:
                where += f" AND {column} = %s"
                params.append(value)
        if exclude_type is not None:
            where += " AND d.event_type <> %s"
            params.append(exclude_type)
        rows = await self._fetch_all(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE {where} ORDER BY d.id DESC LIMIT %s", (*params, limit)
        )
        return [delivery(r) for r in rows]

    async def get_delivery(self, account_id: str, delivery_id: int) -> Delivery | None:
        row = await self._fetch_one(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.account_id = %s AND d.id = %s",
            (account_id, delivery_id),
        )
        return delivery(row) if row else None

    async def replay_delivery(self, account_id: str, delivery_id: int, now: float) -> bool:
        async with self._tx() as conn:
            if not await self._lock_object_of(conn, delivery_id):
                return False
            cursor = await conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = %s, last_error = NULL,"
                " updated_at = %s WHERE account_id = %s AND id = %s AND state = 'dead'"
                " RETURNING account_id, plugin, object_key",
                (now, now, account_id, delivery_id),
            )
            row = await cursor.fetchone()
            if row is not None:
                await self._ready_oldest(conn, *row)
                await self._wake_replicas(conn)
        return row is not None

    async def send_skipped(self, account_id: str, delivery_id: int, plugin: str, now: float) -> bool:
        try:
            async with self._tx() as conn:
                cursor = await conn.execute(
                    "SELECT object_key FROM deliveries WHERE account_id = %s AND id = %s", (account_id, delivery_id)
                )
                found = await cursor.fetchone()
                if found is None:
                    return False
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key_lock(account_id, plugin, found[0]),))
                await self._hold_pause_states(conn, [(account_id, plugin)])
                cursor = await conn.execute(
                    "UPDATE deliveries SET plugin = %s, state = 'pending', forced = TRUE, attempts = 0,"
                    " next_attempt_at = %s, last_error = NULL, updated_at = %s WHERE account_id = %s AND id = %s"
                    " AND state = 'skipped' RETURNING account_id, plugin, object_key",
                    (plugin, now, now, account_id, delivery_id),
                )
                row = await cursor.fetchone()
                if row is not None:
                    await self._ready_oldest(conn, *row)
                    await self._wake_replicas(conn)
        except psycopg.errors.UniqueViolation:
            return False  # the event already has a delivery to that plugin
        return row is not None

    async def get_event(self, account_id: str, seq: int) -> EventRecord | None:
        row = await self._fetch_one(
            f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.account_id = %s AND e.seq = %s", (account_id, seq)
        )
        return event(row) if row else None

    async def count_deliveries(self, account_id: str) -> dict[str, int]:
        rows = await self._fetch_all(
            "SELECT state, COUNT(*) FROM deliveries WHERE account_id = %s GROUP BY state", (account_id,)
        )
        return {r[0]: r[1] for r in rows}

    async def tally_deliveries(self, account_id: str) -> dict[str, DeliveryTally]:
        rows = await self._fetch_all(
            # a vendor's notice skipped by its own plugin is a routine check ("nothing to do yet"), not news
            "SELECT plugin, state, COUNT(*), MAX(updated_at) FROM deliveries WHERE account_id = %s"
            " AND NOT (event_type = 'notification' AND state = 'skipped') GROUP BY plugin, state",
            (account_id,),
        )
        return tally(rows)

    # links

    async def get_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> Link | None:
        row = await self._fetch_one(
            "SELECT account_id, plugin, kind, local_id, remote_id, data FROM links"
            " WHERE account_id = %s AND plugin = %s AND kind = %s AND local_id = %s",
            (account_id, plugin, kind, local_id),
        )
        return link(row) if row else None

    async def find_link(self, account_id: str, plugin: str, kind: str, remote_id: str) -> Link | None:
        row = await self._fetch_one(
            "SELECT account_id, plugin, kind, local_id, remote_id, data FROM links"
            " WHERE account_id = %s AND plugin = %s AND kind = %s AND remote_id = %s ORDER BY local_id LIMIT 1",
            (account_id, plugin, kind, remote_id),
        )
        return link(row) if row else None

    async def put_link(self, link: Link) -> None:
        await self._write(
            "INSERT INTO links(account_id, plugin, kind, local_id, remote_id, data) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT(account_id, plugin, kind, local_id)"
            " DO UPDATE SET remote_id = excluded.remote_id, data = excluded.data",
            link_values(link),
        )

    async def put_links(self, links: Sequence[Link]) -> None:
        if not links:
            return
        async with self._tx() as conn, conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO links(account_id, plugin, kind, local_id, remote_id, data)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT(account_id, plugin, kind, local_id)"
                " DO UPDATE SET remote_id = excluded.remote_id, data = excluded.data",
                [link_values(link) for link in links],
            )

    async def claim_link(self, link: Link) -> bool:
        changed = await self._write(
            "INSERT INTO links(account_id, plugin, kind, local_id, remote_id, data) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            link_values(link),
        )
        return changed == 1

    async def delete_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> None:
        await self._write(
            "DELETE FROM links WHERE account_id = %s AND plugin = %s AND kind = %s AND local_id = %s",
            (account_id, plugin, kind, local_id),
        )

    async def count_links(self, account_id: str, plugin: str, kind: str) -> int:
        row = await self._fetch_one(
            "SELECT COUNT(*) FROM links WHERE account_id = %s AND plugin = %s AND kind = %s",
            (account_id, plugin, kind),
        )
        return int(row[0])

    # cursors

    async def get_cursor(self, account_id: str, plugin: str, name: str) -> str | None:
        row = await self._fetch_one(
            "SELECT value FROM cursors WHERE account_id = %s AND plugin = %s AND name = %s",
            (account_id, plugin, name),
        )
        return row[0] if row else None

    async def set_cursor(self, account_id: str, plugin: str, name: str, value: str | None) -> None:
        if value is None:
            await self._write(
                "DELETE FROM cursors WHERE account_id = %s AND plugin = %s AND name = %s", (account_id, plugin, name)
            )
            return
        await self._write(
            "INSERT INTO cursors(account_id, plugin, name, value) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT(account_id, plugin, name) DO UPDATE SET value = excluded.value",
            (account_id, plugin, name, value),
        )

    # nonces

    async def put_nonce(self, nonce: Nonce) -> None:
        await self._write(
            "INSERT INTO nonces(key, account_id, plugin, data, expires_at) VALUES (%s, %s, %s, %s, %s)",
            (nonce.key, nonce.account_id, nonce.plugin, _json_encode(nonce.data).decode(), nonce.expires_at),
        )

    async def take_nonce(self, key: str, now: float, plugin: str | None = None) -> Nonce | None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM nonces WHERE expires_at <= %s", (now,))
            cursor = await conn.execute(
                "DELETE FROM nonces WHERE key = %s AND (%s::text IS NULL OR plugin = %s)"
                " RETURNING key, account_id, plugin, data, expires_at",
                (key, plugin, plugin),
            )
            row = await cursor.fetchone()
        return nonce(row) if row else None

    # leases on a name

    async def try_lock(self, name: str, owner: str, ttl_seconds: float, now: float) -> bool:
        changed = await self._write(
            "INSERT INTO locks(name, owner, expires_at) VALUES (%s, %s, %s) ON CONFLICT(name) DO UPDATE"
            " SET owner = excluded.owner, expires_at = excluded.expires_at"
            " WHERE locks.owner = excluded.owner OR locks.expires_at <= %s",
            (name, owner, now + ttl_seconds, now),
        )
        return changed == 1

    async def unlock(self, name: str, owner: str) -> bool:
        return await self._write("DELETE FROM locks WHERE name = %s AND owner = %s", (name, owner)) == 1

    async def lock_holder(self, name: str, now: float) -> str | None:
        row = await self._fetch_one("SELECT owner FROM locks WHERE name = %s AND expires_at > %s", (name, now))
        return str(row[0]) if row else None

    # shared rate limits

    async def count_request(self, key: str, limit: int, window_seconds: float, now: float) -> float | None:
        async with self._tx() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_name_lock("rate", key),))
            cursor = await conn.execute(
                "WITH gone AS (DELETE FROM rate_stamps WHERE key = %(k)s AND at <= %(since)s)"
                " SELECT COUNT(*), MIN(at) FROM rate_stamps WHERE key = %(k)s AND at > %(since)s",
                {"k": key, "since": now - window_seconds},
            )
            count, oldest = await cursor.fetchone() or (0, None)
            if count >= limit:
                return float(oldest) + window_seconds
            await conn.execute("INSERT INTO rate_stamps(key, at) VALUES (%s, %s)", (key, now))
        return None

    async def take_slot(self, key: str, holder: str, slots: int, ttl_seconds: float, now: float) -> bool:
        # each holder takes a numbered slot, so the primary key allows no more than `slots` at once; two
        # holders choosing the same free number meet on the key, and the later one retries
        for _ in range(3):
            taken = await self._fetch_one(
                "INSERT INTO rate_slots(key, slot, holder, expires_at)"
                " SELECT %(k)s, s, %(holder)s, %(until)s FROM generate_series(0, %(slots)s - 1) AS s"
                " WHERE NOT EXISTS (SELECT 1 FROM rate_slots r WHERE r.key = %(k)s AND r.expires_at > %(now)s"
                "  AND r.slot = s) AND (SELECT COUNT(*) FROM rate_slots r WHERE r.key = %(k)s"
                "  AND r.expires_at > %(now)s) < %(slots)s"
                " ORDER BY random() LIMIT 1"
                " ON CONFLICT (key, slot) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at"
                " WHERE rate_slots.expires_at <= %(now)s RETURNING slot",
                {"k": key, "holder": holder, "until": now + ttl_seconds, "slots": slots, "now": now},
            )
            if taken is not None:
                return True
            held = await self._fetch_one(
                "SELECT COUNT(*) FROM rate_slots WHERE key = %s AND expires_at > %s", (key, now)
            )
            if held[0] >= slots:
                return False
        return False

    async def renew_slot(self, key: str, holder: str, ttl_seconds: float, now: float) -> bool:
        changed = await self._write(
            "UPDATE rate_slots SET expires_at = %s WHERE key = %s AND holder = %s", (now + ttl_seconds, key, holder)
        )
        return changed == 1

    async def free_slot(self, key: str, holder: str) -> None:
        await self._write("DELETE FROM rate_slots WHERE key = %s AND holder = %s", (key, holder))

    # activity

    async def log_activity(
        self, account_id: str, plugin: str | None, level: str, message: str, data: dict[str, Any], now: float
    ) -> None:
        await self._write(
            "INSERT INTO activity(account_id, plugin, level, message, data, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, plugin, level, message, _json_encode(data).decode(), now),
        )

    async def list_activity(
        self, account_id: str, limit: int = 100, before_id: int | None = None
    ) -> list[ActivityEntry]:
        rows = await self._fetch_all(
            "SELECT id, account_id, plugin, level, message, data, created_at FROM activity"
            " WHERE account_id = %s AND id < %s ORDER BY id DESC LIMIT %s",
            (account_id, before_id if before_id is not None else 2**62, limit),
        )
        return [activity_entry(r) for r in rows]

    async def activity_of_deliveries(self, account_id: str, delivery_ids: Sequence[int]) -> list[ActivityEntry]:
        ids = sorted({int(i) for i in delivery_ids})
        if not ids:
            return []
        rows = await self._fetch_all(
            "SELECT id, account_id, plugin, level, message, data, created_at FROM activity WHERE account_id = %s"
            " AND data LIKE '%%delivery_id%%' AND (data::jsonb ->> 'delivery_id') = ANY(%s) ORDER BY id DESC",
            (account_id, [str(i) for i in ids]),
        )
        return [activity_entry(r) for r in rows]
