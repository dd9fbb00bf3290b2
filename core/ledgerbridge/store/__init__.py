"""Storage: the `Store` protocol, its embedded SQLite implementation and a shared PostgreSQL one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledgerbridge.store.base import (
    Account,
    ActivityEntry,
    ClaimedDelivery,
    Delivery,
    DeliveryState,
    EventRecord,
    Link,
    NewEvent,
    Nonce,
    PluginState,
    Store,
)
from ledgerbridge.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from ledgerbridge.settings import Settings

POSTGRES_SCHEMES = ("postgresql", "postgres")
#: connections a replica's pool may hold beyond one per worker (intake, the UI, the lease renewer)
POOL_HEADROOM = 4


def open_store(settings: Settings) -> Store:
    """The store the settings name, not yet opened: PostgreSQL for a `postgresql://` URL, else the SQLite file."""
    url = settings.database_url
    if not url:
        return SQLiteStore(settings.database_path)
    scheme = url.split(":", 1)[0].lower()
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(f"LEDGERBRIDGE_DATABASE_URL must start with postgresql://, not {scheme}://")
    from ledgerbridge.store.postgres import PostgresStore

    return PostgresStore(url, max_size=settings.workers + POOL_HEADROOM)


__all__ = [
    "Account",
    "ActivityEntry",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "EventRecord",
    "Link",
    "NewEvent",
    "Nonce",
    "PluginState",
    "SQLiteStore",
    "Store",
    "open_store",
]
