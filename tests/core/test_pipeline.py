from __future__ import annotations

import asyncio

from ledgerbridge import DeliveryContext, Payment, hookimpl
from ledgerbridge.errors import PermanentFailure, ReauthorizationRequired, RetryLater
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing.harness import settle

from tests.core.plugins import Producer, Recorder, make_payment


async def publish(runtime: Runtime, account: str, event_id: str, **payment: str) -> bool:
    ctx = await runtime.plugin_context("producer").account(account)
    assert ctx is not None
    return await ctx.publish(make_payment(**payment), external_id=event_id)


async def test_event_reaches_only_plugins_enabled_for_its_account(make_runtime) -> None:
    a, b = Recorder(), Recorder()
    runtime = await make_runtime({"producer": Producer(), "a": a, "b": b})
    await runtime.create_account("acme", "Acme", ["producer", "a"])
    await runtime.create_account("globex", "Globex", ["producer", "b"])

    await publish(runtime, "acme", "evt-1", payment_id="acme-pay")
    await publish(runtime, "globex", "evt-1", payment_id="globex-pay")
    await settle(runtime, "acme")
    await settle(runtime, "globex")

    assert [(acct, p.payment_id) for acct, _, p in a.calls] == [("acme", "acme-pay")]
    assert [(acct, p.payment_id) for acct, _, p in b.calls] == [("globex", "globex-pay")]


async def test_the_producer_never_receives_its_own_event(make_runtime) -> None:
    recorder = Recorder()
    runtime = await make_runtime({"producer": recorder, "other": Recorder(role="accounting")})
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "evt-1")
    assert await settle(runtime, "acme") == {"done": 1}
    assert recorder.calls == []


async def test_same_external_event_is_stored_once(make_runtime) -> None:
    recorder = Recorder()
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")

    results = await asyncio.gather(*(publish(runtime, "acme", "evt-dup") for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await publish(runtime, "acme", "evt-dup") is False
    await settle(runtime, "acme")
    assert len(recorder.calls) == 1


async def test_failing_plugin_neither_blocks_nor_repeats_another(make_runtime) -> None:
    healthy = Recorder(role="accounting")
    broken = Recorder(fail=lambda ctx, value: RuntimeError("vendor down"))
    runtime = await make_runtime({"producer": Producer(), "healthy": healthy, "broken": broken})
    await runtime.create_account("acme", "Acme")

    for n in range(3):
        await publish(runtime, "acme", f"evt-{n}", payment_id=f"pay-{n}")
    counts = await settle(runtime, "acme")

    assert sorted(p.payment_id for _, _, p in healthy.calls) == ["pay-0", "pay-1", "pay-2"]
    assert len(broken.calls) == 3 * 3  # three attempts each (max_attempts=3)
    assert counts == {"done": 3, "dead": 3}


async def test_deliveries_about_one_object_run_in_order(make_runtime) -> None:
    order: list[str] = []

    def slow_first(ctx, payment):
        order.append(f"{payment.payment_id}:{ctx.event_external_id}")
        return RetryLater("not yet") if ctx.event_external_id == "first" and ctx.attempt == 1 else None

    recorder = Recorder(fail=slow_first)
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "first", payment_id="same")
    await publish(runtime, "acme", "second", payment_id="same")
    await publish(runtime, "acme", "other", payment_id="different")
    await settle(runtime, "acme")

    same = [entry for entry in order if entry.startswith("same:")]
    assert same == ["same:first", "same:first", "same:second"]
    assert "different:other" in order


async def test_retry_later_honours_retry_after(make_runtime) -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    def throttled(ctx, payment):
        times.append(loop.time())
        return RetryLater("429", retry_after=0.3) if len(times) == 1 else None

    recorder = Recorder(fail=throttled)
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "evt")
    await settle(runtime, "acme")
    assert len(times) == 2
    assert times[1] - times[0] >= 0.3


async def test_permanent_failure_dead_letters_at_once_and_replays_exactly_once(make_runtime) -> None:
    verdicts = iter([PermanentFailure("customer rejected"), None])
    recorder = Recorder(fail=lambda ctx, value: next(verdicts), role="accounting")
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "evt")
    assert await settle(runtime, "acme") == {"dead": 1}
    [dead] = await runtime.store.list_deliveries("acme", "dead")
    assert dead.last_error == "customer rejected"
    activity = await runtime.store.list_activity("acme")
    assert any("dead letter" in entry.message and entry.level == "error" for entry in activity)

    replays = await asyncio.gather(*(runtime.store.replay_delivery("acme", dead.id, runtime.clock()) for _ in range(3)))
    assert sorted(replays) == [False, False, True]
    runtime.dispatcher.wake()
    assert await settle(runtime, "acme") == {"done": 1}
    assert len(recorder.calls) == 2
    assert await runtime.store.replay_delivery("acme", dead.id, runtime.clock()) is False


async def test_reauthorization_pauses_without_losing_or_counting(make_runtime) -> None:
    connected = asyncio.Event()

    def needs_connection(ctx, payment):
        return None if connected.is_set() else ReauthorizationRequired("reconnect QuickBooks")

    recorder = Recorder(fail=needs_connection, role="accounting")
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")
    for n in range(3):
        await publish(runtime, "acme", f"evt-{n}", payment_id=f"pay-{n}")
    await recorder.wait_for(1)
    await asyncio.sleep(0.2)
    tried = len(recorder.calls)
    await asyncio.sleep(0.3)

    state = await runtime.store.get_plugin_state("acme", "sink")
    assert state.paused_reason == "reconnect QuickBooks"
    assert len(recorder.calls) == tried <= 3  # paused: nothing more is tried
    pending = await runtime.store.list_deliveries("acme", "pending")
    assert len(pending) == 3 and all(d.attempts == 0 for d in pending)

    connected.set()
    ctx = await runtime.account_context("acme", "sink")
    await ctx.resume()
    assert await settle(runtime, "acme") == {"done": 3}


async def test_disabled_consumer_skips_queued_deliveries(make_runtime) -> None:
    recorder = Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "sink": recorder}, workers=False)
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "evt-queued")
    await runtime.set_enabled("acme", "sink", False)
    runtime.dispatcher.start()
    assert await settle(runtime, "acme") == {"skipped": 1}
    assert recorder.calls == []
    await publish(runtime, "acme", "evt-after")  # kept, with its reason, for when the books are on again
    [after, queued] = await runtime.store.list_deliveries("acme", "skipped")
    assert queued.last_error == "sink is off for this account"
    assert after.plugin == "@accounting" and after.last_error is not None and "sink is off" in after.last_error


class ReconnectedMeanwhile:
    """Its first call is refused with old credentials while the user reconnects in the meantime."""

    role = "accounting"

    def __init__(self) -> None:
        self.calls = 0

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        self.calls += 1
        if self.calls == 1:
            await ctx.resume()  # the callback of a reconnection, landing mid-delivery
            raise ReauthorizationRequired("invalid_grant from the previous refresh token")


async def test_a_refusal_older_than_a_reconnection_does_not_pause(make_runtime) -> None:
    plugin = ReconnectedMeanwhile()
    runtime = await make_runtime({"producer": Producer(), "sink": plugin})
    await runtime.create_account("acme", "Acme")
    await publish(runtime, "acme", "evt")
    assert await settle(runtime, "acme") == {"done": 1}
    assert plugin.calls == 2
    assert (await runtime.store.get_plugin_state("acme", "sink")).paused_reason is None


async def test_account_lookups_are_cached_and_follow_changes(make_runtime) -> None:
    runtime = await make_runtime({"producer": Producer(), "sink": Recorder()})
    await runtime.create_account("acme", "Acme")
    producer = runtime.plugin_context("producer")
    assert await producer.account_for_external_id("loc-1") is None
    ctx = await producer.account("acme")
    await ctx.bind_external_id("loc-1")
    found = await producer.account_for_external_id("loc-1")
    assert found is not None and found.account_id == "acme"
    await ctx.bind_external_id(None)
    assert await producer.account_for_external_id("loc-1") is None
    await runtime.set_enabled("acme", "sink", False)
    assert "sink" not in await runtime.enabled_plugins("acme")


class CountingStore:
    """The real store, counting how often the dispatcher asks when work is next due."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.due_queries = 0

    async def next_due_at(self) -> float | None:
        self.due_queries += 1
        return await self._inner.next_due_at()  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


class HoldingBooks:
    """Books whose every delivery waits until released: keeps the workers busy."""

    role = "accounting"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.booked: list[str] = []

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        await self.release.wait()
        self.booked.append(payment.payment_id)


async def test_busy_workers_wait_for_a_finish_instead_of_polling_the_store(tmp_path) -> None:
    from ledgerbridge.store import SQLiteStore

    from tests.core.conftest import fast_settings, manager_with

    settings = fast_settings(tmp_path, workers=1)
    store = CountingStore(SQLiteStore(settings.database_path))
    books = HoldingBooks()
    runtime = Runtime(settings, manager_with({"producer": Producer(), "books": books}), store=store)  # type: ignore[arg-type]
    await runtime.start()
    try:
        await runtime.create_account("acme", "Acme")
        for n in range(3):
            await publish(runtime, "acme", f"evt-{n}", payment_id=f"pay-{n}")
        await asyncio.sleep(0.5)  # one delivery holds the only worker; two more are due
        assert books.booked == [] and store.due_queries < 20
        books.release.set()
        assert await settle(runtime, "acme") == {"done": 3}
        assert sorted(books.booked) == ["pay-0", "pay-1", "pay-2"]
    finally:
        await runtime.stop()
