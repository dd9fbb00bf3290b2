"""A vendor's limits per company held in the store: every process on it together stays within them (each test
runs on SQLite and PostgreSQL; two store handles on one database are two replicas)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from ledgerbridge.context import PluginContext
from ledgerbridge.runtime import Runtime
from ledgerbridge.store import Store
from ledgerbridge.vendor import LocalLimiter
from ledgerbridge.vendor.shared_limiter import SharedLimiter, SharedLimiters

from tests.core.conftest import fast_settings, manager_with
from tests.store.conftest import StoreFactory

NOW = 1_000_000.0


async def test_a_window_counts_requests_until_its_limit_then_says_when_a_place_frees(store: Store) -> None:
    assert await store.count_request("realm-1", 2, 60.0, NOW) is None
    assert await store.count_request("realm-1", 2, 60.0, NOW + 1) is None
    assert await store.count_request("realm-1", 2, 60.0, NOW + 2) == NOW + 60  # the first leaves then
    assert await store.count_request("realm-2", 2, 60.0, NOW + 2) is None  # another company has its own
    assert await store.count_request("realm-1", 2, 60.0, NOW + 60.5) is None
    assert await store.count_request("realm-1", 2, 60.0, NOW + 60.6) == NOW + 61


async def test_slots_are_taken_up_to_their_number_and_freed_by_their_holder_only(store: Store) -> None:
    assert await store.take_slot("realm-1", "a", 2, 30.0, NOW)
    assert await store.take_slot("realm-1", "b", 2, 30.0, NOW)
    assert not await store.take_slot("realm-1", "c", 2, 30.0, NOW)
    await store.free_slot("realm-1", "c")  # not a holder: frees nothing
    assert not await store.take_slot("realm-1", "c", 2, 30.0, NOW)
    await store.free_slot("realm-1", "a")
    assert await store.take_slot("realm-1", "c", 2, 30.0, NOW)


async def test_a_crashed_holder_s_slot_frees_itself_when_its_lease_runs_out(store: Store) -> None:
    assert await store.take_slot("realm-1", "crashed", 1, 5.0, NOW)
    assert await store.take_slot("realm-1", "alive", 1, 5.0, NOW) is False
    assert await store.renew_slot("realm-1", "crashed", 5.0, NOW + 4) is True  # renewed while it lived
    assert await store.take_slot("realm-1", "alive", 1, 5.0, NOW + 8.9) is False
    assert await store.take_slot("realm-1", "alive", 1, 5.0, NOW + 9.1) is True
    assert await store.renew_slot("realm-1", "crashed", 5.0, NOW + 9.2) is False  # it lost the slot


async def test_two_replicas_never_have_more_requests_in_flight_than_the_limit(open_stores: StoreFactory) -> None:
    replicas = [SharedLimiters(await open_stores(), 1000, 60.0, 3, name="qbo") for _ in range(2)]
    in_flight, most = 0, 0

    async def request(limiters: SharedLimiters) -> None:
        nonlocal in_flight, most
        async with limiters.for_realm("realm-1").slot():
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.03)
            in_flight -= 1

    await asyncio.gather(*(request(replicas[i % 2]) for i in range(24)))
    assert most == 3


async def test_two_replicas_never_send_more_requests_in_a_window_than_the_limit(open_stores: StoreFactory) -> None:
    window, limit = 1.0, 3  # a window long enough that a busy machine's scheduling delays do not blur it
    replicas = [SharedLimiters(await open_stores(), limit, window, 10, name="qbo") for _ in range(2)]
    sent: list[float] = []

    async def request(limiters: SharedLimiters) -> None:
        async with limiters.for_realm("realm-1").slot():
            sent.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(request(replicas[i % 2]) for i in range(7)))
    assert len(sent) == 7
    assert max(sum(1 for t in sent if s <= t < s + window) for s in sent) == limit
    assert time.monotonic() - started >= 2 * window  # the 7th waited for a third window


async def test_a_request_waits_for_the_slot_of_a_crashed_replica_to_expire(open_stores: StoreFactory) -> None:
    crashed = await open_stores()
    assert await crashed.take_slot("qbo:realm-1", "killed-replica", 1, 0.4, time.time())
    limiter = SharedLimiters(await open_stores(), 100, 60.0, 1, name="qbo").for_realm("realm-1")
    started = time.monotonic()
    async with limiter.slot():
        waited = time.monotonic() - started
    assert 0.3 <= waited < 3.0


@pytest.mark.parametrize("shared", [False, True])
async def test_a_plugin_gets_limiters_shared_through_the_store_only_when_replicas_share_it(
    shared: bool, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if shared else None
    runtime = Runtime(fast_settings(tmp_path, database_url=url), manager_with({}))
    await runtime.start(workers=False)
    try:
        plugin: PluginContext = runtime.plugin_context("books")
        limiters = plugin.limiters("company", 500, 60.0, 10)
        assert isinstance(limiters, SharedLimiters) == shared
        assert isinstance(limiters.for_realm("realm-1"), SharedLimiter if shared else LocalLimiter)
        assert plugin.limiters("company", 500, 60.0, 10) is limiters  # one budget per name in the process
        async with limiters.for_realm("realm-1").slot():
            pass
    finally:
        await runtime.stop()
