"""Rows of the shared schema read into the store's records (the same column order in every dialect)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ledgerbridge.store.base import (
    Account,
    ActivityEntry,
    Delivery,
    DeliveryTally,
    EventRecord,
    Link,
    Nonce,
    PluginState,
)

DELIVERY_COLUMNS = (
    "d.id, d.event_seq, d.account_id, d.plugin, d.event_type, d.object_key, d.state, d.attempts, "
    "d.next_attempt_at, d.last_error, d.updated_at, d.forced"
)
DELIVERY_WIDTH = 12
ACCOUNT_COLUMNS = "id, name, created_at, backfill_since"
PLUGIN_STATE_COLUMNS = "enabled, settings, external_id, paused_reason, connected_at"
EVENT_COLUMNS = (
    "e.seq, e.account_id, e.source, e.external_id, e.type, e.object_key, e.payload, e.received_at, e.request_id"
)

_json_decode = msgspec.json.Decoder(dict[str, Any]).decode
_json_encode = msgspec.json.Encoder().encode


def account(row: Sequence[Any]) -> Account:
    return Account(id=row[0], name=row[1], created_at=row[2], backfill_since=row[3])


def plugin_state(account_id: str, plugin: str, row: Sequence[Any]) -> PluginState:
    return PluginState(
        account_id=account_id,
        plugin=plugin,
        enabled=bool(row[0]),
        settings=_json_decode(row[1]),
        external_id=row[2],
        paused_reason=row[3],
        connected_at=row[4],
    )


def delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        event_seq=row[1],
        account_id=row[2],
        plugin=row[3],
        event_type=row[4],
        object_key=row[5],
        state=row[6],
        attempts=row[7],
        next_attempt_at=row[8],
        last_error=row[9],
        updated_at=row[10],
        forced=bool(row[11]),
    )


def event(row: Sequence[Any]) -> EventRecord:
    return EventRecord(
        seq=row[0],
        account_id=row[1],
        source=row[2],
        external_id=row[3],
        type=row[4],
        object_key=row[5],
        payload=bytes(row[6]),
        received_at=row[7],
        request_id=row[8],
    )


def link(row: Sequence[Any]) -> Link:
    return Link(
        account_id=row[0], plugin=row[1], kind=row[2], local_id=row[3], remote_id=row[4], data=_json_decode(row[5])
    )


def link_values(value: Link) -> tuple[Any, ...]:
    """A link as the values of an INSERT into links(account_id, plugin, kind, local_id, remote_id, data)."""
    return (
        value.account_id,
        value.plugin,
        value.kind,
        value.local_id,
        value.remote_id,
        _json_encode(value.data).decode(),
    )


def nonce(row: Sequence[Any]) -> Nonce:
    return Nonce(key=row[0], account_id=row[1], plugin=row[2], data=_json_decode(row[3]), expires_at=row[4])


def activity_entry(row: Sequence[Any]) -> ActivityEntry:
    return ActivityEntry(
        id=row[0],
        account_id=row[1],
        plugin=row[2],
        level=row[3],
        message=row[4],
        data=_json_decode(row[5]),
        created_at=row[6],
    )


def tally(rows: Sequence[Sequence[Any]]) -> dict[str, DeliveryTally]:
    """Rows of (plugin, state, count, newest updated_at) as each plugin's tally."""
    counts: dict[str, dict[str, int]] = {}
    last: dict[str, float] = {}
    for plugin, state, count, newest in rows:
        counts.setdefault(plugin, {})[state] = int(count)
        if state == "done":
            last[plugin] = float(newest)
    return {p: DeliveryTally(plugin=p, counts=c, last_done_at=last.get(p)) for p, c in counts.items()}
