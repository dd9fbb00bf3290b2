"""Several server replicas sharing one PostgreSQL database: work flows between them, nothing runs twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ledgerbridge import AccountContext, PluginContext, hookimpl
from ledgerbridge.coordination import run_once
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import NewEvent
from ledgerbridge.store.postgres import PostgresStore
from ledgerbridge.tasks import BackgroundTask
from ledgerbridge.testing.harness import settle

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import Producer, Recorder, make_payment
from tests.postgres_cluster import running_cluster

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
    await replicas({"producer": Producer(), "books": recorder}, poll_interval_seconds=30.0)
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
    counts = await settle(nodes[0], "acme", timeout=30.0)
    assert counts["done"] == objects * versions  # (and one skipped each: the account has no books plugin)

    seen: dict[str, list[Decimal]] = {}
    for _, hook, payment in recorder.calls:
        assert hook == "on_payment"
        seen.setdefault(payment.payment_id, []).append(payment.total.amount)
    assert len(recorder.calls) == objects * versions
    expected = [Decimal(v) for v in range(1, versions + 1)]
    assert all(amounts == expected for amounts in seen.values()), seen


class TokenEndpoint:
    """Stands in for a vendor's OAuth token endpoint: counts refreshes, each taking a little while."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def refresh(self) -> dict[str, Any]:
        self.refreshes += 1
        await asyncio.sleep(0.2)
        return {"access_token": f"token-{self.refreshes}", "expires_at": time.time() + 3600}


async def test_an_expired_token_is_refreshed_once_by_all_the_replicas_that_need_it(replicas: Replicas) -> None:
    endpoint = TokenEndpoint()
    nodes = [await replicas({"producer": Producer(), "books": Recorder()}, workers=False) for _ in range(2)]
    await nodes[0].create_account("acme", "Acme")
    first = await nodes[0].plugin_context("books").account("acme")
    assert first is not None
    await first.put_secret("token", {"access_token": "token-0", "expires_at": time.time() - 1})

    async def access_token(runtime: Runtime) -> str:
        ctx = await runtime.plugin_context("books").account("acme")
        assert ctx is not None

        async def fresh() -> bool:
            token = await ctx.get_secret("token")
            return token is not None and token["expires_at"] > time.time() + 60

        async def refresh() -> None:
            await ctx.put_secret("token", await endpoint.refresh())

        await run_once(runtime.store, "books:token:acme", done=fresh, action=refresh)
        token = await ctx.get_secret("token")
        assert token is not None
        return str(token["access_token"])

    # eight workers on each replica find the token expired at once
    tokens = await asyncio.gather(*(access_token(node) for node in nodes for _ in range(8)))
    assert endpoint.refreshes == 1
    assert set(tokens) == {"token-1"}


async def test_a_background_task_runs_for_each_account_on_one_replica_only(replicas: Replicas) -> None:
    runs: list[tuple[str, str]] = []

    def plugin(replica: str) -> object:
        class Poller:
            @hookimpl
            def background_tasks(self, plugin: PluginContext) -> list[BackgroundTask]:
                async def poll(ctx: AccountContext) -> None:
                    runs.append((replica, ctx.account_id))
                    await asyncio.sleep(0.05)

                return [BackgroundTask("poll", 0.1, poll)]

        return Poller()

    setup = await replicas({"poller": plugin("setup")}, workers=False)
    for account in ("acme", "globex", "initech"):
        await setup.create_account(account, account.title())
    for replica in ("one", "two", "three"):
        await replicas({"poller": plugin(replica)})
    await asyncio.sleep(1.0)

    owners: dict[str, set[str]] = {}
    for replica, account in runs:
        owners.setdefault(account, set()).add(replica)
    assert set(owners) == {"acme", "globex", "initech"}
    assert all(len(replicas_) == 1 for replicas_ in owners.values()), owners
    assert len(runs) >= 3 * 2  # each account ran again and again (about every 0.15 s for a second)


async def test_a_replica_rides_through_a_database_restart() -> None:
    with running_cluster() as cluster:  # its own server: this test restarts it
        url = cluster.create_database()
        store = PostgresStore(url, max_size=2)
        woken = asyncio.Event()
        store.watch(woken.set)
        await store.open()
        try:
            await store.create_account("acme", "Acme")
            await asyncio.to_thread(cluster.restart)
            woken.clear()
            assert (await store.get_account("acme")) is not None  # the pool replaced its dead connections
            event = NewEvent(
                account_id="acme",
                source="crm",
                external_id="e1",
                type="payment",
                object_key="k",
                payload=b"{}",
                consumers=("books",),
            )
            await asyncio.wait_for(woken.wait(), 10)  # the listener reconnected (and woke its watchers)
            woken.clear()
            assert await store.append_events([event], time.time()) == [True]
            await asyncio.wait_for(woken.wait(), 5)  # and hears new work again
        finally:
            await store.close()
