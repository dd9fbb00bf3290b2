"""Durable intake with shared commits: publishers that arrive together share one transaction, each learns
its event is stored only once that transaction is committed, and a failed transaction fails all of them."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import psycopg
import pytest
from ledgerbridge.pipeline.intake import Intake
from ledgerbridge.store import NewEvent, Store

from tests.core.conftest import RuntimeFactory


class CountingStore:
    """The real store; counts inbox transactions and fails the next `failures` of them."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.transactions = 0
        self.failures = 0

    async def append_events(self, events: Sequence[NewEvent], now: float) -> list[bool]:
        self.transactions += 1
        if self.failures > 0:
            self.failures -= 1
            raise OSError("disk I/O error (injected)")
        return await self._inner.append_events(events, now)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def events(count: int, prefix: str = "e") -> list[NewEvent]:
    return [
        NewEvent(
            account_id="acme",
            source="test",
            external_id=f"{prefix}{n}",
            type="test.event",
            object_key=f"k{n}",
            payload=b"{}",
            consumers=(),
        )
        for n in range(count)
    ]


async def test_a_burst_of_publishers_shares_a_few_commits_and_each_learns_it_is_new(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = await make_runtime({}, workers=False)
    await runtime.create_account("acme", "Acme", [])
    store = CountingStore(runtime.store)
    intake = Intake(store, runtime.clock)  # type: ignore[arg-type]

    first = await asyncio.gather(*(intake.publish(e) for e in events(200)))
    repeated = await asyncio.gather(*(intake.publish(e) for e in events(200)))

    assert first == [True] * 200
    assert repeated == [False] * 200  # each stored exactly once
    assert store.transactions <= 4  # two bursts: one transaction each, give or take a straggler


async def test_a_failed_shared_commit_fails_every_publisher_in_it_and_stores_none(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = await make_runtime({}, workers=False)
    await runtime.create_account("acme", "Acme", [])
    store = CountingStore(runtime.store)
    intake = Intake(store, runtime.clock)  # type: ignore[arg-type]
    store.failures = 1

    refused = await asyncio.gather(*(intake.publish(e) for e in events(10)), return_exceptions=True)
    retried = await asyncio.gather(*(intake.publish(e) for e in events(10)))

    assert store.transactions == 2
    assert all(isinstance(outcome, OSError) for outcome in refused)
    assert retried == [True] * 10  # nothing of the failed transaction had been written


async def test_a_publisher_that_gives_up_does_not_cancel_the_commit_others_wait_for(
    make_runtime: RuntimeFactory,
) -> None:
    runtime = await make_runtime({}, workers=False)
    await runtime.create_account("acme", "Acme", [])
    intake = Intake(runtime.store, runtime.clock)
    batch = events(20)

    impatient = asyncio.ensure_future(intake.publish(batch[0]))
    others = [asyncio.ensure_future(intake.publish(e)) for e in batch[1:]]
    await asyncio.sleep(0)
    impatient.cancel()

    assert await asyncio.gather(*others) == [True] * 19
    await intake.drain()
    assert await intake.publish(batch[0]) is False  # its event went out with the others all the same


async def test_after_the_database_drops_the_inbox_connection_the_next_events_are_still_stored(
    make_runtime: RuntimeFactory, test_database_url: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    if test_database_url is None:
        pytest.skip("the inbox keeps a connection of its own on PostgreSQL only")
    runtime = await make_runtime({}, workers=False)
    await runtime.create_account("acme", "Acme", [])
    intake = Intake(runtime.store, runtime.clock)
    assert await asyncio.gather(*(intake.publish(e) for e in events(5, "before"))) == [True] * 5

    async with await psycopg.AsyncConnection.connect(test_database_url, autocommit=True) as admin:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )  # every connection of the server's, the inbox's among them

    assert await asyncio.gather(*(intake.publish(e) for e in events(5, "after"))) == [True] * 5
    assert await asyncio.gather(*(intake.publish(e) for e in events(5, "after"))) == [False] * 5
    assert "inbox's database connection was lost" in caplog.text
