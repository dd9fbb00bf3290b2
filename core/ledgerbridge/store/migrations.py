"""Schema migrations for both stores, in one place, applied in order.

`MIGRATIONS[n]` (SQLite) and `POSTGRES_MIGRATIONS[n]` (PostgreSQL) are the same change in each dialect: a new
migration is appended to both tuples (a test checks they stay the same length). SQLite records the last one
applied in PRAGMA user_version, PostgreSQL in the `schema_version` table, under an advisory lock so replicas
starting together migrate once.
"""

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
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    """,
    """
    -- ready_at: when the delivery may be claimed, set only on the oldest pending delivery of its object while
    -- its plugin is not paused (the later of its next attempt and its lease), NULL otherwise. Claims read
    -- deliveries_ready in order and take the first rows, whatever the backlog behind them. To share the
    -- workers fairly, a claim takes each account's first rows in turn, the least busy accounts first.
    ALTER TABLE deliveries ADD COLUMN ready_at REAL;
    UPDATE deliveries SET ready_at = MAX(next_attempt_at, COALESCE(lease_until, 0))
        WHERE state = 'pending'
        AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.account_id = deliveries.account_id
            AND o.plugin = deliveries.plugin AND o.object_key = deliveries.object_key AND o.state = 'pending'
            AND o.id < deliveries.id)
        AND NOT EXISTS (SELECT 1 FROM plugin_accounts p WHERE p.account_id = deliveries.account_id
            AND p.plugin = deliveries.plugin AND p.paused_reason IS NOT NULL);
    CREATE INDEX deliveries_ready ON deliveries(ready_at, id) WHERE ready_at IS NOT NULL;
    CREATE INDEX deliveries_ready_by_account ON deliveries(account_id, ready_at, id) WHERE ready_at IS NOT NULL;
    CREATE INDEX deliveries_leased ON deliveries(account_id, lease_until) WHERE lease_owner IS NOT NULL;
    DROP INDEX deliveries_due;
    """,
    """
    -- the X-Request-ID of the request that stored the event (logs follow it from the webhook to the vendor)
    ALTER TABLE events ADD COLUMN request_id TEXT;
    """,
    """
    -- shared rate limits (ledgerbridge.vendor.shared_limiter): a stamp per request in a sliding window, in-flight slots
    -- leased with an expiry (a slot of a holder that died frees itself)
    CREATE TABLE rate_stamps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX rate_stamps_key ON rate_stamps(key, at);
    CREATE TABLE rate_slots (
        key TEXT NOT NULL,
        slot INTEGER NOT NULL,
        holder TEXT NOT NULL,
        expires_at REAL NOT NULL,
        PRIMARY KEY (key, slot)
    );
    """,
)

POSTGRES_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE plugin_accounts (
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT NOT NULL,
        enabled BOOLEAN NOT NULL DEFAULT FALSE,
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
        ciphertext BYTEA NOT NULL,
        PRIMARY KEY (account_id, plugin, name)
    );
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        source TEXT NOT NULL,
        external_id TEXT NOT NULL,
        type TEXT NOT NULL,
        object_key TEXT NOT NULL,
        payload BYTEA NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        UNIQUE (account_id, source, external_id)
    );
    CREATE TABLE deliveries (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_seq BIGINT NOT NULL REFERENCES events(seq) ON DELETE CASCADE,
        account_id TEXT NOT NULL,
        plugin TEXT NOT NULL,
        event_type TEXT NOT NULL,
        object_key TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        lease_owner TEXT,
        lease_until DOUBLE PRECISION,
        last_error TEXT,
        updated_at DOUBLE PRECISION NOT NULL,
        UNIQUE (event_seq, plugin)
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE state = 'pending';
    CREATE INDEX deliveries_order ON deliveries(account_id, plugin, object_key, id) WHERE state = 'pending';
    CREATE INDEX deliveries_account ON deliveries(account_id, state, id);
    CREATE INDEX deliveries_owner ON deliveries(lease_owner) WHERE state = 'pending';
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
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX nonces_expiry ON nonces(expires_at);
    CREATE TABLE activity (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        plugin TEXT,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        data TEXT NOT NULL DEFAULT '{}',
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX activity_account ON activity(account_id, id);
    """,
    """
    ALTER TABLE accounts ADD COLUMN backfill_since DOUBLE PRECISION;
    ALTER TABLE plugin_accounts ADD COLUMN connected_at DOUBLE PRECISION;
    ALTER TABLE deliveries ADD COLUMN forced BOOLEAN NOT NULL DEFAULT FALSE;
    CREATE INDEX deliveries_skipped ON deliveries(account_id, id) WHERE state = 'skipped';
    """,
    """
    CREATE TABLE locks (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    """,
    """
    -- ready_at: when the delivery may be claimed, set only on the oldest pending delivery of its object while
    -- its plugin is not paused (the later of its next attempt and its lease), NULL otherwise. Claims read
    -- deliveries_ready in order and take the first rows, whatever the backlog behind them. To share the
    -- workers fairly, a claim takes each account's first rows in turn, the least busy accounts first.
    ALTER TABLE deliveries ADD COLUMN ready_at DOUBLE PRECISION;
    UPDATE deliveries d SET ready_at = GREATEST(next_attempt_at, COALESCE(lease_until, 0))
        WHERE state = 'pending'
        AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.account_id = d.account_id
            AND o.plugin = d.plugin AND o.object_key = d.object_key AND o.state = 'pending'
            AND o.id < d.id)
        AND NOT EXISTS (SELECT 1 FROM plugin_accounts p WHERE p.account_id = d.account_id
            AND p.plugin = d.plugin AND p.paused_reason IS NOT NULL);
    CREATE INDEX deliveries_ready ON deliveries(ready_at, id) WHERE ready_at IS NOT NULL;
    CREATE INDEX deliveries_ready_by_account ON deliveries(account_id, ready_at, id) WHERE ready_at IS NOT NULL;
    CREATE INDEX deliveries_leased ON deliveries(account_id, lease_until) WHERE lease_owner IS NOT NULL;
    DROP INDEX deliveries_due;
    """,
    """
    -- the X-Request-ID of the request that stored the event (logs follow it from the webhook to the vendor)
    ALTER TABLE events ADD COLUMN request_id TEXT;
    """,
    """
    -- shared rate limits (ledgerbridge.vendor.shared_limiter): a stamp per request in a sliding window, in-flight slots
    -- leased with an expiry (a slot of a holder that died frees itself)
    CREATE TABLE rate_stamps (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX rate_stamps_key ON rate_stamps(key, at);
    CREATE TABLE rate_slots (
        key TEXT NOT NULL,
        slot INTEGER NOT NULL,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (key, slot)
    );
    """,
)


def statements(script: str) -> list[str]:
    """A migration's statements, one by one, without comments (no migration puts ';' or '--' in a literal)."""
    lines = (line.split("--", 1)[0] for line in script.splitlines())
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]
