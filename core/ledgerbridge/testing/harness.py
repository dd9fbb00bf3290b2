"""A real core around one plugin, for the plugin's own tests: store, pipeline and workers, no HTTP.

async with PluginHarness({"plainledger": my_plugin}) as harness:
    ctx = await harness.account("acme")
    await harness.publish("acme", sample_payment(), external_id="pay-1")
    assert await harness.settle("acme") == {"done": 1}
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ledgerbridge.context import AccountContext, DeliveryContext
from ledgerbridge.events import decode_event
from ledgerbridge.models import Event
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import Runtime
from ledgerbridge.samples import (  # noqa: F401  (re-exported: the samples lived here first)
    sample_contact,
    sample_contact_sync,
    sample_first_invoice_paid,
    sample_invoice,
    sample_invoice_change,
    sample_invoice_paid,
    sample_payment,
)
from ledgerbridge.settings import Settings
from ledgerbridge.store import NewEvent, SQLiteStore

if TYPE_CHECKING:
    from starlette.applications import Starlette

PRODUCER = "harness-producer"
HARNESS_BACKFILL_SINCE = 946_684_800.0  # 2000-01-01


async def settle(runtime: Runtime, account_id: str, timeout: float = 5.0) -> dict[str, int]:
    """Wait until no delivery of the account is pending; the deliveries counted by state."""

    async def idle() -> dict[str, int]:
        while True:
            counts = await runtime.store.count_deliveries(account_id)
            if not counts.get("pending"):
                return counts
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(idle(), timeout)


class _Producer:
    """Stands in for the plugin on the other side: it publishes events and consumes none."""


class _RecordingStore(SQLiteStore):
    """The embedded store, keeping a copy of every event offered to the inbox (new or repeated), so a
    test can check what a plugin published exactly as the core stored it."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        self.offered: list[NewEvent] = []

    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        self.offered.extend(events)
        return await super().append_events(events, now)


class PluginHarness:
    def __init__(
        self, plugins: dict[str, object], data_dir: Path | None = None, *, workers: bool = True, **settings: Any
    ) -> None:
        """`workers=False` starts no delivery workers and no background tasks: events wait, pending."""
        self._plugins = plugins
        self._data_dir = data_dir
        self._workers = workers
        self._settings = settings
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self.runtime: Runtime | None = None
        self._store: _RecordingStore | None = None

    async def __aenter__(self) -> PluginHarness:
        if self._data_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="ledgerbridge-harness-")
            self._data_dir = Path(self._temporary.name)
        manager = PluginManager()
        for name, plugin in {**self._plugins, PRODUCER: _Producer()}.items():
            manager.register(plugin, name)
        manager.check_pending()
        values: dict[str, Any] = {
            "data_dir": self._data_dir,
            "admin_token": "harness-admin-token",  # the server refuses tokens under 16 characters
            "backoff_base_seconds": 0.01,
            "backoff_cap_seconds": 0.1,
            "poll_interval_seconds": 0.05,
            "max_attempts": 3,
            **self._settings,
        }
        settings = Settings(**values)
        self._store = _RecordingStore(settings.database_path)
        self.runtime = Runtime(settings, manager, store=self._store)
        await self.runtime.start(workers=self._workers)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.runtime is not None:
            await self.runtime.stop()
        if self._temporary is not None:
            self._temporary.cleanup()

    @property
    def core(self) -> Runtime:
        """The running core (store, plugins, pipeline)."""
        if self.runtime is None:
            raise RuntimeError("use the harness in `async with`")
        return self.runtime

    def start_workers(self) -> None:
        """Start delivering, in a harness made with `workers=False` (background tasks stay off)."""
        self.core.dispatcher.start()

    async def account(self, account_id: str, plugin: str | None = None) -> AccountContext:
        """The account (created with every plugin enabled on first use), seen by `plugin`."""
        runtime = self.core
        if await runtime.store.get_account(account_id) is None:
            await runtime.create_account(account_id, account_id.title())
            # the samples are dated in the past: sync everything, as an account with a backfill would
            await runtime.set_backfill(account_id, HARNESS_BACKFILL_SINCE)
        ctx = await runtime.account_context(account_id, plugin or next(iter(self._plugins)))
        assert ctx is not None
        return ctx

    async def publish(self, account_id: str, event: Event, *, external_id: str) -> bool:
        await self.account(account_id)
        return await self.core.publish(account_id, PRODUCER, external_id, event)

    async def settle(self, account_id: str, timeout: float = 10.0) -> dict[str, int]:
        """Wait until nothing is pending for the account; the deliveries counted by state."""
        return await settle(self.core, account_id, timeout)

    async def dead_letters(self, account_id: str) -> list[str]:
        return [d.last_error or "" for d in await self.core.store.list_deliveries(account_id, "dead")]

    async def redeliver(self, account_id: str, delivery_id: int) -> None:
        """Hand a finished delivery to its plugin once more, under the same idempotency key: what a second
        worker does when the first one's lease expired after the side effect but before it recorded it."""
        runtime = self.core
        delivery = await runtime.store.get_delivery(account_id, delivery_id)
        account = await runtime.store.get_account(account_id)
        if delivery is None or account is None:
            raise KeyError(f"no delivery {delivery_id} of account {account_id!r}")
        record = await runtime.store.get_event(account_id, delivery.event_seq)
        assert record is not None
        ctx = DeliveryContext(
            runtime,
            delivery.plugin,
            account,
            delivery_id=delivery.id,
            attempt=delivery.attempts + 1,
            event_type=record.type,
            event_external_id=record.external_id,
            source=record.source,
            received_at=record.received_at,
        )
        await runtime.plugins.deliver(delivery.plugin, ctx, decode_event(record.payload))

    def published(self, source: str) -> list[NewEvent]:
        """Every event `source` offered to the inbox, repeats included, as the core encoded it."""
        if self._store is None:
            raise RuntimeError("use the harness in `async with`")
        return [event for event in self._store.offered if event.source == source]

    def app(self) -> Starlette:
        """The whole server (admin API, UI, every plugin's routes) around this running core, without
        sandboxes; serve it or call it with `httpx.ASGITransport`."""
        from ledgerbridge.web.app import create_app

        return create_app(runtime=self.core, mount_sandboxes=False)
