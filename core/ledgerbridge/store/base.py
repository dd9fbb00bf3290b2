"""The storage interface: what the core needs from a database, and the records it returns.

`SQLiteStore` implements it on aiosqlite; a PostgreSQL backend implements the same protocol (claiming
with `FOR UPDATE SKIP LOCKED`). Plugins never see the store: they use the contexts in `ledgerbridge.context`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import msgspec

from ledgerbridge.observability.context import current_request_id

DeliveryState = Literal["pending", "done", "skipped", "dead"]


class Record(msgspec.Struct, frozen=True, kw_only=True):
    pass


class Account(Record, frozen=True):
    id: str
    name: str
    created_at: float
    #: the account's opt-in backfill: also sync payments and invoices created since then (epoch seconds)
    backfill_since: float | None = None


class PluginState(Record, frozen=True):
    """One plugin's state for one account: enablement, settings, external identity, pause."""

    account_id: str
    plugin: str
    enabled: bool
    settings: dict[str, Any]
    external_id: str | None
    paused_reason: str | None
    #: when the plugin first connected (or, for a plugin with no connection, was first enabled) for the account
    connected_at: float | None = None


class NewEvent(Record, frozen=True):
    account_id: str
    source: str
    external_id: str
    type: str
    object_key: str
    payload: bytes
    consumers: tuple[str, ...]
    #: deliveries recorded as skipped from the start: (plugin, or "@role" when no plugin has it; reason)
    skipped: tuple[tuple[str, str], ...] = ()
    #: the X-Request-ID of the request publishing it (taken from the request's context when not given)
    request_id: str | None = msgspec.field(default_factory=current_request_id)


class EventRecord(Record, frozen=True):
    seq: int
    account_id: str
    source: str
    external_id: str
    type: str
    object_key: str
    payload: bytes
    received_at: float
    #: the X-Request-ID of the request that stored it, if any: logs of its deliveries carry it
    request_id: str | None = None


class Delivery(Record, frozen=True):
    id: int
    event_seq: int
    account_id: str
    plugin: str
    event_type: str
    object_key: str
    state: DeliveryState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    updated_at: float
    #: sent on the user's request ("send now"): the account's skip rules no longer apply to it
    forced: bool = False


class DeliveryTally(Record, frozen=True):
    """One plugin's deliveries for one account: how many in each state, and when one last succeeded."""

    plugin: str
    counts: dict[str, int]
    last_done_at: float | None


class Backlog(Record, frozen=True):
    """The fleet's work in the store (the same from every replica), for `/metrics`."""

    #: pending deliveries no worker holds (due now, waiting behind an older one of their object, or retrying later)
    pending: int
    #: pending deliveries under a worker's lease (running, or left by a dead worker until the lease expires)
    leased: int
    #: per plugin, how many accounts have it paused (waiting for the user to reconnect)
    paused: dict[str, int]


class ClaimedDelivery(Record, frozen=True):
    delivery: Delivery
    event: EventRecord


class Link(Record, frozen=True):
    account_id: str
    plugin: str
    kind: str
    local_id: str
    remote_id: str
    data: dict[str, Any]


class ActivityEntry(Record, frozen=True):
    id: int
    account_id: str
    plugin: str | None
    level: Literal["info", "warning", "error"]
    message: str
    data: dict[str, Any]
    created_at: float


class Nonce(Record, frozen=True):
    key: str
    account_id: str
    plugin: str
    data: dict[str, Any]
    expires_at: float


class Store(Protocol):
    #: whether other processes (replicas) may share the store, so coordination must go through it
    shared_by_replicas: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    def watch(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another process sharing the store adds work, so idle workers wake."""
        ...

    # accounts
    async def create_account(self, account_id: str, name: str) -> Account: ...
    async def get_account(self, account_id: str) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...
    async def rename_account(self, account_id: str, name: str) -> bool: ...
    async def delete_account(self, account_id: str) -> bool: ...

    # plugin state per account
    async def get_plugin_state(self, account_id: str, plugin: str) -> PluginState: ...
    async def list_plugin_states(self, account_id: str) -> list[PluginState]: ...
    async def set_plugin_enabled(self, account_id: str, plugin: str, enabled: bool) -> None: ...
    async def set_plugin_settings(self, account_id: str, plugin: str, settings: dict[str, Any]) -> None: ...
    async def set_external_id(self, account_id: str, plugin: str, external_id: str | None) -> None: ...
    async def find_account_by_external_id(self, plugin: str, external_id: str) -> str | None: ...
    async def set_paused(self, account_id: str, plugin: str, reason: str | None) -> None: ...
    async def enabled_plugins(self, account_id: str) -> frozenset[str]: ...
    async def mark_connected(self, account_id: str, plugin: str, at: float) -> float:
        """Record the plugin's first connection for the account (later calls keep the first); the kept time."""
        ...

    async def set_backfill_since(self, account_id: str, since: float | None) -> None: ...

    # encrypted secrets (the store sees ciphertext only)
    async def get_secret(self, account_id: str, plugin: str, name: str) -> bytes | None: ...
    async def put_secret(self, account_id: str, plugin: str, name: str, ciphertext: bytes) -> None: ...
    async def delete_secret(self, account_id: str, plugin: str, name: str) -> None: ...

    # inbox and deliveries
    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]: ...
    async def claim_deliveries(
        self, owner: str, limit: int, lease_seconds: float, now: float
    ) -> list[ClaimedDelivery]: ...
    async def finish_delivery(
        self, delivery_id: int, owner: str, state: DeliveryState, error: str | None, now: float
    ) -> bool: ...
    async def schedule_retry(
        self, delivery_id: int, owner: str, next_attempt_at: float, error: str, now: float
    ) -> bool: ...
    async def release_delivery(self, delivery_id: int, owner: str, *, refund_attempt: bool, now: float) -> bool: ...
    async def release_leases(self, owner: str) -> int: ...
    async def renew_leases(self, owner: str, delivery_ids: Sequence[int], lease_until: float) -> int: ...
    async def next_due_at(self) -> float | None: ...
    async def backlog(self) -> Backlog:
        """Pending and leased deliveries and paused plugins, counted in the store (cheap: partial indexes)."""
        ...

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
    ) -> list[Delivery]: ...
    async def get_delivery(self, account_id: str, delivery_id: int) -> Delivery | None: ...
    async def replay_delivery(self, account_id: str, delivery_id: int, now: float) -> bool: ...
    async def send_skipped(self, account_id: str, delivery_id: int, plugin: str, now: float) -> bool:
        """Queue a skipped delivery again for `plugin`, past the skip rules (forced); False if not skipped."""
        ...

    async def get_event(self, account_id: str, seq: int) -> EventRecord | None: ...
    async def count_deliveries(self, account_id: str) -> dict[str, int]: ...
    async def tally_deliveries(self, account_id: str) -> dict[str, DeliveryTally]:
        """Per plugin: its deliveries' counts by state (routine checks, skipped notifications, left out) and
        the time of its newest finished ("done") one."""
        ...

    # links between external objects, and once-only marks
    async def get_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> Link | None: ...
    async def find_link(self, account_id: str, plugin: str, kind: str, remote_id: str) -> Link | None: ...
    async def put_link(self, link: Link) -> None: ...
    async def put_links(self, links: Sequence[Link]) -> None:
        """Several `put_link`s in one transaction (a page of an import: one commit, not one per link)."""
        ...

    async def claim_link(self, link: Link) -> bool: ...
    async def delete_link(self, account_id: str, plugin: str, kind: str, local_id: str) -> None: ...
    async def count_links(self, account_id: str, plugin: str, kind: str) -> int: ...

    # checkpoints
    async def get_cursor(self, account_id: str, plugin: str, name: str) -> str | None: ...
    async def set_cursor(self, account_id: str, plugin: str, name: str, value: str | None) -> None: ...

    # one-time values (OAuth state)
    async def put_nonce(self, nonce: Nonce) -> None: ...
    async def take_nonce(self, key: str, now: float, plugin: str | None = None) -> Nonce | None:
        """Consume the nonce `key` (only when it belongs to `plugin`, if given); anything else consumes nothing."""
        ...

    # leases on a name, shared by every process on the store (one token refresh, one poller per account)
    async def try_lock(self, name: str, owner: str, ttl_seconds: float, now: float) -> bool:
        """Take or extend `name` for `owner` until `now + ttl_seconds`; False while another owner holds it."""
        ...

    async def unlock(self, name: str, owner: str) -> bool: ...
    async def lock_holder(self, name: str, now: float) -> str | None:
        """Who holds `name` now (None when free or expired); reads only (signed-in browser sessions)."""
        ...

    # shared rate limits (ledgerbridge.vendor.shared_limiter)
    async def count_request(self, key: str, limit: int, window_seconds: float, now: float) -> float | None:
        """Count one request on `key` at `now` unless `limit` were counted in the `window_seconds` before:
        None when counted, else the time the oldest of them leaves the window (nothing is counted)."""
        ...

    async def take_slot(self, key: str, holder: str, slots: int, ttl_seconds: float, now: float) -> bool:
        """Hold one of `key`'s `slots` for `holder` until `now + ttl_seconds`; False while all are held."""
        ...

    async def renew_slot(self, key: str, holder: str, ttl_seconds: float, now: float) -> bool: ...
    async def free_slot(self, key: str, holder: str) -> None: ...

    # activity log
    async def log_activity(
        self, account_id: str, plugin: str | None, level: str, message: str, data: dict[str, Any], now: float
    ) -> None: ...
    async def list_activity(
        self, account_id: str, limit: int = 100, before_id: int | None = None
    ) -> list[ActivityEntry]: ...
    async def activity_of_deliveries(self, account_id: str, delivery_ids: Sequence[int]) -> list[ActivityEntry]:
        """The log entries about these deliveries (their data's `delivery_id`), newest first."""
        ...
