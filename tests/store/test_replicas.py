"""Several server replicas sharing one PostgreSQL database: work flows between them, nothing runs twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ledgerbridge.runtime import Runtime
from ledgerbridge.store.postgres import PostgresStore
from ledgerbridge.testing.harness import settle

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import Producer, Recorder, make_payment

Replicas = Callable[..., Any]


@pytest.fixture
async def replicas(postgres_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    """Starts runtimes on one database and one data folder (so one secret key), as replicas are deployed."""
    started: list[Runtime] = []

    async def start(plugins: dict[str, object], *, workers: bool = True, **overrides: Any) -> Runtime:
        settings = fast_settings(tmp_path, database_url=postgres_url, **overrides)
        runtime = Runtime(settings, manager_with(plugins))
        await runtime.start(workers=workers)
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        await runtime.stop()


async def publish(runtime: Runtime, event_id: str, payment_id: str, amount: str = "10.00") -> bool:
    ctx = await runtime.plugin_context("producer").account("acme")
    assert ctx is not None
    return await ctx.publish(make_payment(payment_id, amount), external_id=event_id)


async def test_a_replica_built_from_a_database_url_runs_on_postgresql(replicas: Replicas) -> None:
    runtime = await replicas({"producer": Producer()}, workers=False)
    assert isinstance(runtime.store, PostgresStore)


async def test_an_event_taken_in_by_one_replica_wakes_an_idle_worker_of_another_at_once(replicas: Replicas) -> None:
    recorder = Recorder()
    intake_only = await replicas({"producer": Producer(), "books": Recorder()}, workers=False)
    # polls only every 30 s: a delivery within seconds can only come from the store's notification
    worker = await replicas({"producer": Producer(), "books": recorder}, poll_interval_seconds=30.0)
    await intake_only.create_account("acme", "Acme")
    await asyncio.sleep(0.2)  # the worker's claim loop is now asleep on its 30 s poll

    started = time.monotonic()
    await publish(intake_only, "evt-1", "pay-1")
    await recorder.wait_for(1, timeout=5.0)
    assert time.monotonic() - started < 2.0
    assert recorder.calls[0][2].payment_id == "pay-1"


async def test_three_replicas_deliver_every_event_once_and_each_object_in_order(replicas: Replicas) -> None:
    recorder = Recorder()
    nodes = [await replicas({"producer": Producer(), "books": recorder}, workers=4) for _ in range(3)]
    await nodes[0].create_account("acme", "Acme")
    objects, versions = 12, 8

    async def feed(node: int) -> None:
        for version in range(1, versions + 1):
            for obj in range(node, objects, 3):
                await publish(nodes[node], f"evt-{obj}-{version}", f"pay-{obj}", f"{version}.00")
                await publish(nodes[(node + 1) % 3], f"evt-{obj}-{version}", f"pay-{obj}", f"{version}.00")

    await asyncio.gather(*(feed(n) for n in range(3)))
    assert await settle(nodes[0], "acme", timeout=30.0) == {"done": objects * versions}

    seen: dict[str, list[Decimal]] = {}
    for _, hook, payment in recorder.calls:
        assert hook == "on_payment"
        seen.setdefault(payment.payment_id, []).append(payment.total.amount)
    assert len(recorder.calls) == objects * versions
    expected = [Decimal(v) for v in range(1, versions + 1)]
    assert all(amounts == expected for amounts in seen.values()), seen
