"""Storage: the `Store` protocol and its embedded SQLite implementation."""

from ledgerbridge.store.base import (
    Account,
    ActivityEntry,
    ClaimedDelivery,
    Delivery,
    DeliveryState,
    DeliveryTally,
    EventRecord,
    Link,
    NewEvent,
    Nonce,
    PluginState,
    Store,
)
from ledgerbridge.store.sqlite import SQLiteStore

__all__ = [
    "Account",
    "ActivityEntry",
    "ClaimedDelivery",
    "Delivery",
    "DeliveryState",
    "DeliveryTally",
    "EventRecord",
    "Link",
    "NewEvent",
    "Nonce",
    "PluginState",
    "SQLiteStore",
    "Store",
]
