"""Schema migrations for the SQLite store, applied in order; PRAGMA user_version records the last one."""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE plugin_accounts (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0,
        settings TEXT NOT NULL DEFAULT '{}',
        external_id TEXT,
        paused_reason TEXT,
        PRIMARY KEY (account_id, plugin)
    );
    CREATE UNIQUE INDEX plugin_accounts_external ON plugin_accounts(plugin, external_id)
        WHERE external_id IS NOT NULL;
    CREATE TABLE secrets (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        name TEXT NOT NULL,
        ciphertext BLOB NOT NULL,
        PRIMARY KEY (account_id, plugin, name)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        type TEXT NOT NULL,
        object_key TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at REAL NOT NULL,
        UNIQUE (account_id, source, external_id)
    );
    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_seq INTEGER NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
        account_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        event_type TEXT NOT NULL,
        object_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        lease_owner TEXT,
        lease_until REAL,
        last_error TEXT,
        updated_at REAL NOT NULL,
        UNIQUE (event_seq, plugin)
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
    CREATE INDEX deliveries_order ON deliveries(account_id, plugin, object_key, id) WHERE state = 'pending';
    CREATE INDEX deliveries_account ON deliveries(account_id, state, id);
    CREATE TABLE links (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        local_id TEXT NOT NULL,
        remote_id TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (account_id, plugin, kind, local_id)
    );
    CREATE INDEX links_remote ON links(account_id, plugin, kind, remote_id);
    CREATE TABLE cursors (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        name TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (account_id, plugin, name)
    );
    CREATE TABLE nonces (
        key TEXT PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        data TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE activity (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL
    );
    CREATE INDEX activity_account ON activity(account_id, id);
    """,
    """
    ALTER TABLE accounts ADD COLUMN backfill_since REAL;
    ALTER TABLE plugin_accounts ADD COLUMN connected_at REAL;
    ALTER TABLE deliveries ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX deliveries_skipped ON deliveries(account_id, id) WHERE state = 'skipped';
    """,
    """
    CREATE TABLE locks (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
)
