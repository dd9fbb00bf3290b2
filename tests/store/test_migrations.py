"""Upgrading a SQLite file made by an earlier version keeps every delivery's place in its queue."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from ledgerbridge.store import SQLiteStore
from ledgerbridge.store.migrations import MIGRATIONS, statements

NOW = 1_000_000.0
BEFORE_READY_AT = 3  # migrations applied by the version before claims read ready_at


def old_database(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        for script in MIGRATIONS[:BEFORE_READY_AT]:
            for statement in statements(script):
                db.execute(statement)
        db.execute(f"PRAGMA user_version={BEFORE_READY_AT}")
        db.execute("INSERT INTO accounts(id, name, created_at) VALUES ('acme', 'Acme', 0)")
        db.execute("INSERT INTO plugin_accounts(account_id, plugin, paused_reason) VALUES ('acme', 'crm', 'revoked')")
        rows = [  # (external id, plugin, object, lease_until)
            ("a1", "qb", "k:a", NOW + 30),
            ("a2", "qb", "k:a", None),
            ("b1", "qb", "k:b", None),
            ("b2", "qb", "k:b", None),
            ("c1", "crm", "k:c", None),
        ]
        for seq, (external_id, plugin, key, lease_until) in enumerate(rows, start=1):
            db.execute(
                "INSERT INTO events VALUES (?, 'acme', 'src', ?, 'payment', ?, X'7B7D', ?)",
                (seq, external_id, key, NOW),
            )
            db.execute(
                "INSERT INTO deliveries(event_seq, account_id, plugin, event_type, object_key, next_attempt_at,"
                " lease_owner, lease_until, updated_at) VALUES (?, 'acme', ?, 'payment', ?, ?, ?, ?, ?)",
                (seq, plugin, key, NOW, "w" if lease_until else None, lease_until, NOW),
            )
        db.commit()


async def test_an_upgraded_database_claims_each_object_s_oldest_delivery_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old_database(path)
    store = SQLiteStore(path)
    await store.open()
    try:
        assert [c.event.external_id for c in await store.claim_deliveries("w2", 10, 60, NOW)] == ["b1"]
        assert await store.next_due_at() == NOW + 30  # a1's lease
        assert [c.event.external_id for c in await store.claim_deliveries("w2", 10, 60, NOW + 30)] == ["a1"]
        await store.set_paused("acme", "crm", None)
        assert [c.event.external_id for c in await store.claim_deliveries("w2", 10, 60, NOW + 30)] == ["c1"]
    finally:
        await store.close()
