"""The embedded store: SQLite through aiosqlite, in WAL mode with synchronous=FULL.

One connection serves the process; an asyncio lock keeps each transaction whole, because statements of
concurrent coroutines would otherwise interleave inside one SQLite transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from ledgerbridge.errors import ExternalIdTaken
from ledgerbridge.store import rows as records
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
from ledgerbridge.store.migrations import MIGRATIONS, statements
from ledgerbridge.store.turns import Turns

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder(dict[str, Any]).decode

_INSERT_CHUNK = 100
# ready_at is set on the oldest pending delivery of each object whose plugin is not paused, NULL elsewhere
_PAUSED = (
    "EXISTS (SELECT 1 FROM plugin_accounts p WHERE p.account_id = deliveries.account_id"
    " AND p.plugin = deliveries.plugin AND p.paused_reason IS NOT NULL)"
)
_READY = "MAX(next_attempt_at, COALESCE(lease_until, 0))"
# the head of an object's pending deliveries, the only one that may be claimed: the one under way if any, else
# the oldest (a delivery replayed or sent on request behind one under way waits for it)
_HEAD = (
    "(SELECT o.id FROM deliveries o WHERE o.account_id = {0}.account_id AND o.plugin = {0}.plugin"
    " AND o.object_key = {0}.object_key AND o.state = 'pending' ORDER BY o.lease_owner IS NULL, o.id LIMIT 1)"
)
_KEEP_READY = "CASE WHEN ready_at IS NULL THEN NULL ELSE {} END"  # a change of time on a row that may be claimed
# the ready deliveries a claim may take, ranked so accounts share the workers: each account's first rows take
# turns, and an account with deliveries in flight waits that many turns (parameters: ?1 now, ?2 limit)
_FAIR_TURNS = (
    "busy AS (SELECT a.id AS account_id, (SELECT COUNT(*) FROM (SELECT 1 FROM deliveries l"
    " WHERE l.account_id = a.id AND l.lease_owner IS NOT NULL AND l.lease_until > ?1 LIMIT ?2)) AS n FROM accounts a),"
    " heads AS (SELECT d.id, d.account_id, d.ready_at,"
    " ROW_NUMBER() OVER (PARTITION BY d.account_id ORDER BY d.ready_at, d.id) AS turn"
    " FROM accounts a JOIN deliveries d ON d.id IN (SELECT id FROM deliveries WHERE account_id = a.id"
    " AND ready_at <= ?1 ORDER BY ready_at, id LIMIT ?2)),"
    " turns AS (SELECT h.id, ROW_NUMBER() OVER (ORDER BY b.n + h.turn, h.ready_at, h.id) AS rank"
    " FROM heads h JOIN busy b ON b.account_id = h.account_id)"
)


def owner_only(path: str) -> None:
    """Create `path` readable and writable by its owner only, or narrow an existing file to that."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


async def _roll_back(conn: aiosqlite.Connection) -> None:
    """End a failed transaction, even in a task being cancelled: the connection's thread runs a BEGIN or COMMIT
    it was handed whether or not its task waited for it, and a transaction left open would make every later
    BEGIN on this connection fail. The ROLLBACK queues behind them, so it ends whatever they started."""
    with contextlib.suppress(sqlite3.OperationalError):  # nothing to roll back: the BEGIN itself failed
        await asyncio.shield(conn.execute("ROLLBACK"))


class SQLiteStore:
    shared_by_replicas = False

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        self._turns = Turns()

    # lifecycle

    async def open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            owner_only(self.path)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys=ON")
        self._conn = conn
        await self._migrate()
        if self.path != ":memory:":
            # SQLite gives -wal and -shm the database's mode; files from an older install may differ
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(self.path + suffix, 0o600)

    async def close(self) -> None:
        if self._conn is not None:
            async with self._turns.turn():
                await self._conn.close()
            self._conn = None

    def watch(self, callback: Callable[[], None]) -> None:
        """Nothing to do: one server process owns a SQLite file, and its intake wakes its dispatcher itself."""

    async def _migrate(self) -> None:
        async with self._tx() as conn:
            (version,) = await self._one(conn, "PRAGMA user_version")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements(script):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version={number}")

    @property
    def _connection(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the store is not open")
        return self._conn

    @contextlib.asynccontextmanager
    async def _tx(self, *, urgent: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        async with self._turns.turn(urgent=urgent):
            conn = self._connection
            try:
                await conn.execute("BEGIN IMMEDIATE")
                yield conn
                await conn.execute("COMMIT")
            except BaseException:
                await _roll_back(conn)
                raise

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._turns.turn():
            yield self._connection

    @staticmethod
    async def _one(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> Any:
        async with conn.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    @staticmethod
    async def _all(conn: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def _write(self, sql: str, params: Iterable[Any] = ()) -> int:
        async with self._tx() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.rowcount

    async def _fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self._read() as conn:
            return await self._one(conn, sql, params)

    async def _fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._read() as conn:
            return await self._all(conn, sql, params)

    # accounts

    async def create_account(self, account_id: str, name: str) -> Account:
        now = time.time()
        try:
            await self._write("INSERT INTO accounts(id, name, created_at) VALUES (?, ?, ?)", (account_id, name, now))
        except sqlite3.IntegrityError as exc:
            raise KeyError(f"account {account_id!r} already exists") from exc
        return Account(id=account_id, name=name, created_at=now)

    async def get_account(self, account_id: str) -> Account | None:
        row = await self._fetch_one(f"SELECT {records.ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return records.account(row) if row else None

    async def list_accounts(self) -> list[Account]:
        rows = await self._fetch_all(f"SELECT {records.ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id")
        return [records.account(r) for r in rows]

    async def set_backfill_since(self, account_id: str, since: float | None) -> None:
        await self._write("UPDATE accounts SET backfill_since = ? WHERE id = ?", (since, account_id))

    async def rename_account(self, account_id: str, name: str) -> bool:
        return await self._write("UPDATE accounts SET name = ? WHERE id = ?", (name, account_id)) == 1

    async def delete_account(self, account_id: str) -> bool:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM deliveries WHERE account_id = ?", (account_id,))
            cursor = await conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            return cursor.rowcount == 1

    # plugin state

    async def get_plugin_state(self, account_id: str, plugin: str) -> PluginState:
        row = await self._fetch_one(
            f"SELECT {records.PLUGIN_STATE_COLUMNS} FROM plugin_accounts WHERE account_id = ? AND plugin = ?",
            (account_id, plugin),
        )
        if row is None:
            return PluginState(
                account_id=account_id, plugin=plugin, enabled=False, settings={}, external_id=None, paused_reason=None
            )
        return records.plugin_state(account_id, plugin, row)

    async def list_plugin_states(self, account_id: str) -> list[PluginState]:
        rows = await self._fetch_all(
            f"SELECT plugin, {records.PLUGIN_STATE_COLUMNS} FROM plugin_accounts WHERE account_id = ? ORDER BY plugin",
            (account_id,),
        )
        return [records.plugin_state(account_id, r[0], r[1:]) for r in rows]

    async def _upsert_plugin_column(self, account_id: str, plugin: str, column: str, value: Any) -> None:
        await self._write(
            f"INSERT INTO plugin_accounts(account_id, plugin, {column}) VALUES (?, ?, ?)"
            f" ON CONFLICT(account_id, plugin) DO UPDATE SET {column} = excluded.{column}",
            (account_id, plugin, value),
        )

    async def set_plugin_enabled(self, account_id: str, plugin: str, enabled: bool) -> None:
        await self._upsert_plugin_column(account_id, plugin, "enabled", int(enabled))

    async def set_plugin_settings(self, account_id: str, plugin: str, settings: dict[str, Any]) -> None:
        await self._upsert_plugin_column(account_id, plugin, "settings", _json_encode(settings).decode())

    async def set_external_id(self, account_id: str, plugin: str, external_id: str | None) -> None:
        try:
            await self._upsert_plugin_column(account_id, plugin, "external_id", external_id)
        except sqlite3.IntegrityError as exc:
            raise ExternalIdTaken(f"{plugin} {external_id!r} is already bound to another account") from exc

    async def find_account_by_external_id(self, plugin: str, external_id: str) -> str | None:
        row = await self._fetch_one(
            "SELECT account_id FROM plugin_accounts WHERE plugin = ? AND external_id = ?", (plugin, external_id)
        )
        return row[0] if row else None

    async def set_paused(self, account_id: str, plugin: str, reason: str | None) -> None:
        async with self._tx() as conn:
            before = await self._one(
                conn,
                "SELECT paused_reason FROM plugin_accounts WHERE account_id = ? AND plugin = ?",
                (account_id, plugin),
            )
            await conn.execute(
                "INSERT INTO plugin_accounts(account_id, plugin, paused_reason) VALUES (?, ?, ?)"
                " ON CONFLICT(account_id, plugin) DO UPDATE SET paused_reason = excluded.paused_reason",
                (account_id, plugin, reason),
            )
            if reason is not None:
                await conn.execute(
                    "UPDATE deliveries SET ready_at = NULL WHERE account_id = ? AND plugin = ? AND state = 'pending'"
                    " AND ready_at IS NOT NULL",
                    (account_id, plugin),
                )
            elif before is not None and before[0] is not None:
                await conn.execute(
                    f"UPDATE deliveries SET ready_at = {_READY} WHERE account_id = ? AND plugin = ?"
                    f" AND state = 'pending' AND id = {_HEAD.format('deliveries')}",
                    (account_id, plugin),
                )

    async def mark_connected(self, account_id: str, plugin: str, at: float) -> float:
        async with self._tx() as conn:
            await conn.execute(
                "INSERT INTO plugin_accounts(account_id, plugin, connected_at) VALUES (?, ?, ?) ON CONFLICT(account_id,"
                " plugin) DO UPDATE SET connected_at = COALESCE(connected_at, excluded.connected_at)",
                (account_id, plugin, at),
            )
            (kept,) = await self._one(
                conn,
                "SELECT connected_at FROM plugin_accounts WHERE account_id = ? AND plugin = ?",
                (account_id, plugin),
            )
        return float(kept)

    async def enabled_plugins(self, account_id: str) -> frozenset[str]:
        rows = await self._fetch_all(
            "SELECT plugin FROM plugin_accounts WHERE account_id = ? AND enabled = 1", (account_id,)
        )
        return frozenset(r[0] for r in rows)

    # secrets

    async def get_secret(self, account_id: str, plugin: str, name: str) -> bytes | None:
        row = await self._fetch_one(
            "SELECT ciphertext FROM secrets WHERE account_id = ? AND plugin = ? AND name = ?",
            (account_id, plugin, name),
        )
        return bytes(row[0]) if row else None

    async def put_secret(self, account_id: str, plugin: str, name: str, ciphertext: bytes) -> None:
        await self._write(
            "INSERT INTO secrets(account_id, plugin, name, ciphertext) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(account_id, plugin, name) DO UPDATE SET ciphertext = excluded.ciphertext",
            (account_id, plugin, name, ciphertext),
        )

    async def delete_secret(self, account_id: str, plugin: str, name: str) -> None:
        await self._write(
            "DELETE FROM secrets WHERE account_id = ? AND plugin = ? AND name = ?", (account_id, plugin, name)
        )

    # inbox and deliveries

    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        """Store new events and their deliveries in one transaction; True where an event was new."""
        created: set[tuple[str, str, str]] = set()
        async with self._tx(urgent=True) as conn:  # a webhook's sender waits for this commit
            for start in range(0, len(events), _INSERT_CHUNK):
                chunk = events[start : start + _INSERT_CHUNK]
                values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
                params: list[Any] = []
                for e in chunk:
                    params += [
                        e.account_id,
                        e.source,
                        e.external_id,
                        e.type,
                        e.object_key,
                        e.payload,
                        now,
                        e.request_id,
                    ]
                rows = await self._all(
                    conn,
                    "INSERT OR IGNORE INTO events(account_id, source, external_id, type, object_key, payload,"
                    f" received_at, request_id) VALUES {values} RETURNING seq, account_id, source, external_id",
                    params,
                )
                seqs = {(r[1], r[2], r[3]): r[0] for r in rows}
                created.update(seqs)
                deliveries = [
                    (seqs[key], e.account_id, plugin, e.type, e.object_key, "pending", None, now, now)
                    for e in chunk
                    if (key := (e.account_id, e.source, e.external_id)) in seqs
                    for plugin in e.consumers
                ] + [
                    (seqs[key], e.account_id, target, e.type, e.object_key, "skipped", reason, now, now)
                    for e in chunk
                    if (key := (e.account_id, e.source, e.external_id)) in seqs
                    for target, reason in e.skipped
                ]
                if deliveries:
                    await conn.executemany(
                        "INSERT OR IGNORE INTO deliveries(event_seq, account_id, plugin, event_type, object_key,"
                        " state, last_error, next_attempt_at, updated_at, ready_at)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, CASE WHEN ?6 <> 'pending'"
                        " OR EXISTS (SELECT 1 FROM deliveries o WHERE o.account_id = ?2 AND o.plugin = ?3"
                        "   AND o.object_key = ?5 AND o.state = 'pending')"
                        " OR EXISTS (SELECT 1 FROM plugin_accounts p WHERE p.account_id = ?2 AND p.plugin = ?3"
                        "   AND p.paused_reason IS NOT NULL) THEN NULL ELSE ?8 END)",
                        deliveries,
                    )
        seen: set[tuple[str, str, str]] = set()
        result = []
        for e in events:
            key = (e.account_id, e.source, e.external_id)
            result.append(key in created and key not in seen)
            seen.add(key)
        return result

    async def claim_deliveries(self, owner: str, limit: int, lease_seconds: float, now: float) -> list[ClaimedDelivery]:
        async with self._tx() as conn:
            rows = await self._all(
                conn,
                f"WITH {_FAIR_TURNS} SELECT {records.DELIVERY_COLUMNS}, {records.EVENT_COLUMNS} FROM turns t"
                " JOIN deliveries d ON d.id = t.id JOIN events e ON e.seq = d.event_seq ORDER BY t.rank LIMIT ?2",
                (now, limit),
            )
            if not rows:
                return []
            ids = [r[0] for r in rows]
            marks = ", ".join("?" * len(ids))
            await conn.execute(
                f"UPDATE deliveries SET lease_owner = ?, lease_until = ?, ready_at = ?, attempts = attempts + 1,"
                f" updated_at = ? WHERE id IN ({marks})",
                (owner, now + lease_seconds, now + lease_seconds, now, *ids),
            )
        claimed = []
        for r in rows:
            d = records.delivery(r[: records.DELIVERY_WIDTH])
            claimed.append(
                ClaimedDelivery(
                    delivery=msgspec.structs.replace(d, attempts=d.attempts + 1),
                    event=records.event(r[records.DELIVERY_WIDTH :]),
                )
            )
        return claimed

    async def finish_delivery(
        self, delivery_id: int, owner: str, state: DeliveryState, error: str | None, now: float
    ) -> bool:
        async with self._tx() as conn:
            row = await self._one(
                conn,
                "UPDATE deliveries SET state = ?, last_error = ?, lease_owner = NULL, lease_until = NULL,"
                " ready_at = NULL, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'pending'"
                " RETURNING account_id, plugin, object_key",
                (state, error, now, delivery_id, owner),
            )
            if row is not None:
                await self._ready_oldest(conn, *row)
        return row is not None

    @staticmethod
    async def _ready_oldest(conn: aiosqlite.Connection, account_id: str, plugin: str, object_key: str) -> None:
        """Make the head of an object's pending deliveries (the one under way if any, else the oldest) the only
        one with a ready_at."""
        head = (
            "(SELECT id FROM deliveries WHERE account_id = ?1 AND plugin = ?2 AND object_key = ?3"
            " AND state = 'pending' ORDER BY lease_owner IS NULL, id LIMIT 1)"
        )
        await conn.execute(
            "UPDATE deliveries SET ready_at = NULL WHERE account_id = ?1 AND plugin = ?2 AND object_key = ?3"
            f" AND state = 'pending' AND ready_at IS NOT NULL AND id <> {head}",
            (account_id, plugin, object_key),
        )
        await conn.execute(
            f"UPDATE deliveries SET ready_at = CASE WHEN {_PAUSED} THEN NULL ELSE {_READY} END WHERE id = {head}",
            (account_id, plugin, object_key),
        )

    async def schedule_retry(
        self, delivery_id: int, owner: str, next_attempt_at: float, error: str, now: float
    ) -> bool:
        changed = await self._write(
            "UPDATE deliveries SET next_attempt_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL,"
            f" ready_at = {_KEEP_READY.format('?')}, updated_at = ? WHERE id = ? AND lease_owner = ?"
            " AND state = 'pending'",
            (next_attempt_at, error, next_attempt_at, now, delivery_id, owner),
        )
        return changed == 1

    async def release_delivery(self, delivery_id: int, owner: str, *, refund_attempt: bool, now: float) -> bool:
        changed = await self._write(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = attempts - ?, updated_at = ?,"
            f" ready_at = {_KEEP_READY.format('next_attempt_at')}"
            " WHERE id = ? AND lease_owner = ? AND state = 'pending'",
            (int(refund_attempt), now, delivery_id, owner),
        )
        return changed == 1

    async def release_leases(self, owner: str) -> int:
        return await self._write(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = MAX(attempts - 1, 0),"
            f" ready_at = {_KEEP_READY.format('next_attempt_at')} WHERE lease_owner = ? AND state = 'pending'",
            (owner,),
        )

    async def renew_leases(self, owner: str, delivery_ids: Sequence[int], lease_until: float) -> int:
        if not delivery_ids:
            return 0
        marks = ", ".join("?" * len(delivery_ids))
        return await self._write(
            f"UPDATE deliveries SET lease_until = ?, ready_at = {_KEEP_READY.format('?')}"
            f" WHERE lease_owner = ? AND state = 'pending' AND id IN ({marks})",
            (lease_until, lease_until, owner, *delivery_ids),
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
        where, params = "d.account_id = ?", [account_id]
        filters = (("d.state", state), ("d.event_type", event_type), ("d.object_key", object_key), ("d.plugin", plugin))
        for column, value in filters:
            if value is not None:
                where += f" AND {column} = ?"
                params.append(value)
        if exclude_type is not None:
            where += " AND d.event_type != ?"
            params.append(exclude_type)
        rows = await self._fetch_all(
            f"SELECT {records.DELIVERY_COLUMNS} FROM deliveries d WHERE {where} ORDER BY d.id DESC LIMIT ?",
            (*params, limit),
        )
        return [records.delivery(r) for r in rows]

    async def get_delivery(self, account_id: str, delivery_id: int) -> Delivery | None:
        row = await self._fetch_one(
            f"SELECT {records.DELIVERY_COLUMNS} FROM deliveries d WHERE d.account_id = ? AND d.id = ?",
            (account_id, delivery_id),
        )
        return records.delivery(row) if row else None

    async def replay_delivery(self, account_id: str, delivery_id: int, now: float) -> bool:
        async with self._tx() as conn:
            row = await self._one(
                conn,
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL,"
                " updated_at = ? WHERE account_id = ? AND id = ? AND state = 'dead'"
                " RETURNING account_id, plugin, object_key",
                (now, now, account_id, delivery_id),
            )
            if row is not None:
                await self._ready_oldest(conn, *row)
        return row is not None

    async def send_skipped(self, account_id: str, delivery_id: int, plugin: str, now: float) -> bool:
        try:
            async with self._tx() as conn:
                row = await self._one(
                    conn,
                    "UPDATE deliveries SET plugin = ?, state = 'pending', forced = 1, attempts = 0,"
                    " next_attempt_at = ?, last_error = NULL, updated_at = ? WHERE account_id = ? AND id = ?"
                    " AND state = 'skipped' RETURNING account_id, plugin, object_key",
                    (plugin, now, now, account_id, delivery_id),
                )
                if row is not None:
                    await self._ready_oldest(conn, *row)
        except sqlite3.IntegrityError:
            return False  # the event already has a delivery to that plugin
        return row is not None

    async def get_event(self, account_id: str, seq: int) -> EventRecord | None:
        row = await self._fetch_one(
            f"SELECT {records.EVENT_COLUMNS} FROM events e WHERE e.account_id = ? AND e.seq = ?", (account_id, seq)
        )
        return records.event(row) if row else None

    async def count_deliveries(self, account_id: str) -> dict[str, int]:
        rows = await self._fetch_all(
            "SELECT state, COUNT(*) FROM deliveries WHERE account_id = ? GROUP BY state", (account_id,)
        )
        return {r[0]: r[1] for r in rows}

    async def tally_deliveries(self, account_id: str) -> dict[str, DeliveryTally]:
        rows = await self._fetch_all(
            # a vendor's notice skipped by its own plugin is a routine check ("nothing to do yet"), not news
            "SELECT plugin, state, COUNT(*), MAX(updated_at) FROM deliveries WHERE account_id = ?"
            " AND NOT (event_type = 'notification' AND state = 'skipped') GROUP BY plugin, state",
            (account_id,),
        )
        return records.tally(rows)

    # links

    async def get_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> Link | None:
        row = await self._fetch_one(
            "SELECT account_id, plugin, kind, local_id, remote_id, data FROM links"
            " WHERE account_id = ? AND plugin = ? AND kind = ? AND local_id = ?",
            (account_id, plugin, kind, local_id),
        )
        return records.link(row) if row else None

    async def find_link(self, account_id: str, plugin: str, kind: str, remote_id: str) -> Link | None:
        row = await self._fetch_one(
            "SELECT account_id, plugin, kind, local_id, remote_id, data FROM links"
            " WHERE account_id = ? AND plugin = ? AND kind = ? AND remote_id = ? LIMIT 1",
            (account_id, plugin, kind, remote_id),
        )
        return records.link(row) if row else None

    async def put_link(self, link: Link) -> None:
        await self._write(
            "INSERT INTO links(account_id, plugin, kind, local_id, remote_id, data) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(account_id, plugin, kind, local_id)"
            " DO UPDATE SET remote_id = excluded.remote_id, data = excluded.data",
            records.link_values(link),
        )

    async def put_links(self, links: Sequence[Link]) -> None:
        if not links:
            return
        async with self._tx() as conn:
            await conn.executemany(
                "INSERT INTO links(account_id, plugin, kind, local_id, remote_id, data) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(account_id, plugin, kind, local_id)"
                " DO UPDATE SET remote_id = excluded.remote_id, data = excluded.data",
                [records.link_values(link) for link in links],
            )

    async def claim_link(self, link: Link) -> bool:
        changed = await self._write(
            "INSERT OR IGNORE INTO links(account_id, plugin, kind, local_id, remote_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            records.link_values(link),
        )
        return changed == 1

    async def delete_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> None:
        await self._write(
            "DELETE FROM links WHERE account_id = ? AND plugin = ? AND kind = ? AND local_id = ?",
            (account_id, plugin, kind, local_id),
        )

    async def count_links(self, account_id: str, plugin: str, kind: str) -> int:
        row = await self._fetch_one(
            "SELECT COUNT(*) FROM links WHERE account_id = ? AND plugin = ? AND kind = ?", (account_id, plugin, kind)
        )
        return int(row[0])

    # cursors

    async def get_cursor(self, account_id: str, plugin: str, name: str) -> str | None:
        row = await self._fetch_one(
            "SELECT value FROM cursors WHERE account_id = ? AND plugin = ? AND name = ?", (account_id, plugin, name)
        )
        return row[0] if row else None

    async def set_cursor(self, account_id: str, plugin: str, name: str, value: str | None) -> None:
        if value is None:
            await self._write(
                "DELETE FROM cursors WHERE account_id = ? AND plugin = ? AND name = ?", (account_id, plugin, name)
            )
            return
        await self._write(
            "INSERT INTO cursors(account_id, plugin, name, value) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(account_id, plugin, name) DO UPDATE SET value = excluded.value",
            (account_id, plugin, name, value),
        )

    # nonces

    async def put_nonce(self, nonce: Nonce) -> None:
        await self._write(
            "INSERT INTO nonces(key, account_id, plugin, data, expires_at) VALUES (?, ?, ?, ?, ?)",
            (nonce.key, nonce.account_id, nonce.plugin, _json_encode(nonce.data).decode(), nonce.expires_at),
        )

    async def take_nonce(self, key: str, now: float, plugin: str | None = None) -> Nonce | None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
            row = await self._one(
                conn,
                "DELETE FROM nonces WHERE key = ? AND (? IS NULL OR plugin = ?)"
                " RETURNING key, account_id, plugin, data, expires_at",
                (key, plugin, plugin),
            )
        if row is None:
            return None
        return records.nonce(row)

    # leases on a name

    async def try_lock(self, name: str, owner: str, ttl_seconds: float, now: float) -> bool:
        changed = await self._write(
            "INSERT INTO locks(name, owner, expires_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE"
            " SET owner = excluded.owner, expires_at = excluded.expires_at"
            " WHERE locks.owner = excluded.owner OR locks.expires_at <= ?",
            (name, owner, now + ttl_seconds, now),
        )
        return changed == 1

    async def unlock(self, name: str, owner: str) -> bool:
        return await self._write("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner)) == 1

    async def lock_holder(self, name: str, now: float) -> str | None:
        row = await self._fetch_one("SELECT owner FROM locks WHERE name = ? AND expires_at > ?", (name, now))
        return str(row[0]) if row else None

    # shared rate limits

    async def count_request(self, key: str, limit: int, window_seconds: float, now: float) -> float | None:
        async with self._tx() as conn:
            await conn.execute("DELETE FROM rate_stamps WHERE key = ? AND at <= ?", (key, now - window_seconds))
            count, oldest = await self._one(conn, "SELECT COUNT(*), MIN(at) FROM rate_stamps WHERE key = ?", (key,))
            if count >= limit:
                return float(oldest) + window_seconds
            await conn.execute("INSERT INTO rate_stamps(key, at) VALUES (?, ?)", (key, now))
        return None

    async def take_slot(self, key: str, holder: str, slots: int, ttl_seconds: float, now: float) -> bool:
        async with self._tx() as conn:
            held = {
                r[0]
                for r in await self._all(
                    conn, "SELECT slot FROM rate_slots WHERE key = ? AND expires_at > ?", (key, now)
                )
            }
            if len(held) >= slots:
                return False
            free = min(set(range(slots)) - held)
            await conn.execute(
                "INSERT INTO rate_slots(key, slot, holder, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT(key, slot)"
                " DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (key, free, holder, now + ttl_seconds),
            )
        return True

    async def renew_slot(self, key: str, holder: str, ttl_seconds: float, now: float) -> bool:
        changed = await self._write(
            "UPDATE rate_slots SET expires_at = ? WHERE key = ? AND holder = ?", (now + ttl_seconds, key, holder)
        )
        return changed == 1

    async def free_slot(self, key: str, holder: str) -> None:
        await self._write("DELETE FROM rate_slots WHERE key = ? AND holder = ?", (key, holder))

    # activity

    async def log_activity(
        self, account_id: str, plugin: str | None, level: str, message: str, data: dict[str, Any], now: float
    ) -> None:
        await self._write(
            "INSERT INTO activity(account_id, plugin, level, message, data, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, plugin, level, message, _json_encode(data).decode(), now),
        )

    async def list_activity(
        self, account_id: str, limit: int = 100, before_id: int | None = None
    ) -> list[ActivityEntry]:
        rows = await self._fetch_all(
            "SELECT id, account_id, plugin, level, message, data, created_at FROM activity"
            " WHERE account_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (account_id, before_id if before_id is not None else 2**62, limit),
        )
        return [records.activity_entry(r) for r in rows]

    async def activity_of_deliveries(self, account_id: str, delivery_ids: Sequence[int]) -> list[ActivityEntry]:
        ids = sorted({int(i) for i in delivery_ids})
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = await self._fetch_all(
            "SELECT id, account_id, plugin, level, message, data, created_at FROM activity"
            f" WHERE account_id = ? AND json_extract(data, '$.delivery_id') IN ({marks}) ORDER BY id DESC",
            (account_id, *ids),
        )
        return [records.activity_entry(r) for r in rows]
