"""A conformance suite a plugin author runs against their own plugin, the way the Singer SDK's tap tests work.

In the plugin's tests:

    from ledgerbridge.testing.conformance import plugin_test_class
    import my_plugin

    async def documents(ctx):                 # what the plugin wrote to its backend, for this account
        return sorted(await my_backend.documents(ctx.account_id))

    TestConformance = plugin_test_class(my_plugin, "myplugin", prepare=connect, observe=documents)

pytest then collects checks that the plugin fits the hook specs; that its settings, card, routes and
background tasks are well-formed; that every business hook it consumes handles a sample event through a
real core, does visible work, and does it once however often the delivery or the event is repeated; and,
for a producer, that its routes refuse malformed requests with a 4xx, its background tasks run for an
unconnected account, and what it publishes decodes back through the core.

The tests are plain functions that run their async bodies with `asyncio.run`: they need no pytest plugin
(pytest-asyncio or anyio) and no setting of the project that runs them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn

import msgspec

from ledgerbridge import events
from ledgerbridge.cards import IntegrationCard
from ledgerbridge.context import AccountContext
from ledgerbridge.errors import Skip
from ledgerbridge.models import Event
from ledgerbridge.plugins import PluginError, PluginManager
from ledgerbridge.tasks import BackgroundTask
from ledgerbridge.testing import producer
from ledgerbridge.testing.harness import PluginHarness

Prepare = Callable[[AccountContext], Awaitable[None]]
Observe = Callable[[AccountContext], Awaitable[Any]]

ACCOUNT = "conformance"
TASK_TIMEOUT_SECONDS = 30.0

#: The business hooks a plugin can consume, each with a sample event as the built-in plugins publish it.
SAMPLES: dict[str, Callable[[], Event]] = {
    definition.hook: definition.sample for definition in events.event_types().values() if definition.sample is not None
}


def _run(body: Coroutine[Any, Any, None]) -> None:
    asyncio.run(body)


def _skip(reason: str) -> NoReturn:
    import pytest  # the generated tests run under pytest; the kit's module imports without it

    pytest.skip(reason)


class Kit:
    """The checks behind the generated test class, for one plugin registered under one name."""

    def __init__(self, plugin: object, name: str, prepare: Prepare | None, observe: Observe | None) -> None:
        self.plugin = plugin
        self.name = name
        self.prepare = prepare
        self.observe = observe

    def manager(self) -> PluginManager:
        plugins = PluginManager()
        plugins.register(self.plugin, self.name)
        plugins.check_pending()  # a misspelled hook name fails here
        return plugins

    def consumed(self) -> list[str]:
        plugins = self.manager()
        return [hook for hook in SAMPLES if plugins.implements(self.name, hook)]

    def role_fits_its_hooks(self) -> None:
        """Every event hook the plugin implements is one that events can reach, given its role."""
        plugins = self.manager()
        role, subscribed = plugins.role(self.name), plugins.subscriptions(self.name)

        def implemented(hook: str) -> bool:
            try:
                return plugins.implements(self.name, hook)
            except PluginError:  # an event type another package registered, with hooks this manager lacks
                return False

        unreachable = [
            definition.hook
            for definition in events.event_types().values()
            if definition.name != "notification"
            and implemented(definition.hook)
            and definition.route != role
            and definition.name not in subscribed
        ]
        assert not unreachable, (
            f"{self.name} implements {', '.join(unreachable)} but no event will reach it: declare its role "
            f'(role = "accounting" for books, "crm" for a CRM) or list the event types in `subscribes`'
        )

    def harness(self, *, workers: bool = True) -> PluginHarness:
        return PluginHarness({self.name: self.plugin}, workers=workers)

    async def prepared(self, harness: PluginHarness) -> AccountContext:
        ctx = await harness.account(ACCOUNT, self.name)
        if self.prepare is not None:
            await self.prepare(ctx)
        return ctx

    async def snapshot(self, ctx: AccountContext) -> Any:
        return await self.observe(ctx) if self.observe is not None else None

    # the plugin's shape

    def settings_have_defaults(self) -> None:
        schema = self.manager().settings_schema(self.name)
        if schema is None:
            return
        instance = schema()  # every field needs a default: a new account has no settings yet
        assert isinstance(msgspec.to_builtins(instance), dict)

    async def card_renders(self) -> None:
        async with self.harness() as harness:
            ctx = await harness.account(ACCOUNT, self.name)
            card = await harness.core.plugins.card(self.name, ctx)
            assert card is None or isinstance(card, IntegrationCard)
            if card is not None:
                msgspec.json.encode(card)

    async def routes_and_tasks_are_well_formed(self) -> None:
        from starlette.routing import BaseRoute

        async with self.harness() as harness:
            runtime = harness.core
            context = runtime.plugin_context(self.name)
            assert all(isinstance(r, BaseRoute) for r in runtime.plugins.routes(self.name, context))
            tasks = runtime.plugins.background_tasks(self.name, context)
            assert all(isinstance(t, BackgroundTask) and t.every_seconds > 0 for t in tasks)

    # the consumer side

    async def samples_are_handled(self) -> None:
        hooks = self.consumed()
        if not hooks:
            _skip(f"{self.name} consumes no business hook")
        async with self.harness() as harness:
            await self.prepared(harness)
            for hook in hooks:
                await harness.publish(ACCOUNT, SAMPLES[hook](), external_id=f"sample-{hook}")
            counts = await harness.settle(ACCOUNT)
            dead = await harness.dead_letters(ACCOUNT)
            assert not dead, f"{self.name} dead-lettered a sample event: {dead}"
            assert counts.get("done", 0) + counts.get("skipped", 0) == len(hooks), counts

    def side_effects_are_observable(self) -> None:
        hooks = self.consumed()
        if hooks and self.observe is None:
            raise AssertionError(
                f"{self.name} consumes {', '.join(hooks)}: pass observe= to plugin_test_class, an async function "
                "of the account context returning a snapshot of what the plugin wrote to its backend for that "
                "account (documents, journal lines, messages sent), so the kit can check that a repeated "
                "delivery does the work once"
            )

    async def repeats_do_the_work_once(self) -> None:
        hooks = self.consumed()
        if not hooks:
            _skip(f"{self.name} consumes no business hook")
        problems: list[str] = []
        async with self.harness() as harness:
            ctx = await self.prepared(harness)
            for hook in hooks:
                problems += await self._repeat(harness, ctx, hook)
        assert not problems, f"{self.name}:\n  " + "\n  ".join(problems)

    async def _repeat(self, harness: PluginHarness, ctx: AccountContext, hook: str) -> list[str]:
        """Deliver `hook`'s sample, then again under the same idempotency key (a lease that expired after the
        side effect), then publish the same event again under the same external id; observe after each."""
        store = harness.core.store
        external_id = f"repeat-{hook}"
        known = {d.id for d in await store.list_deliveries(ACCOUNT, limit=1000)}
        before = await self.snapshot(ctx)
        await harness.publish(ACCOUNT, SAMPLES[hook](), external_id=external_id)
        await harness.settle(ACCOUNT)
        new = [d for d in await store.list_deliveries(ACCOUNT, limit=1000) if d.id not in known]
        if len(new) != 1:
            return [f"{hook}: the sample event made {len(new)} deliveries to {self.name}, not one"]
        [delivery] = new
        if delivery.state not in ("done", "skipped"):
            return [f"{hook}: the sample delivery ended {delivery.state}: {delivery.last_error}"]
        booked = await self.snapshot(ctx)
        problems = []
        if self.observe is not None and delivery.state == "done" and booked == before:
            problems.append(
                f"{hook}: the delivery succeeded but observe(ctx) shows no change; observe must see the "
                "plugin's side effects (and a hook with nothing to do raises Skip)"
            )
        try:
            await harness.redeliver(ACCOUNT, delivery.id)
        except Skip:
            pass
        except Exception as exc:
            problems.append(f"{hook}: the repeated delivery raised {type(exc).__name__}: {exc}")
        repeated = await self.snapshot(ctx)
        if repeated != booked:
            problems.append(f"{hook}: a repeated delivery (same ctx.idempotency_key) did the work twice")
        if await harness.publish(ACCOUNT, SAMPLES[hook](), external_id=external_id):
            problems.append(f"{hook}: the core stored an event published twice under one external id twice")
        await harness.settle(ACCOUNT)
        if await self.snapshot(ctx) != repeated:
            problems.append(f"{hook}: the same event published twice under one external id did the work twice")
        return problems

    # the producer side

    async def malformed_requests_are_refused(self) -> None:
        async with self.harness() as harness:
            runtime = harness.core
            if not runtime.plugins.routes(self.name, runtime.plugin_context(self.name)):
                _skip(f"{self.name} has no routes")
            ctx = await self.prepared(harness)
            problems = await producer.malformed_requests(harness, self.name, ctx)
        assert not problems, f"{self.name}:\n  " + "\n  ".join(problems)

    async def tasks_run_unconnected(self) -> None:
        # no workers: the scheduler must not run the same tasks beside this check
        async with self.harness(workers=False) as harness:
            runtime = harness.core
            if not runtime.plugins.background_tasks(self.name, runtime.plugin_context(self.name)):
                _skip(f"{self.name} has no background tasks")
            ctx = await harness.account(ACCOUNT, self.name)  # not prepared: never connected
            problems = await producer.background_tasks_once(harness, self.name, ctx, TASK_TIMEOUT_SECONDS)
        assert not problems, f"{self.name}, for an account that never connected:\n  " + "\n  ".join(problems)

    async def published_events_round_trip(self) -> None:
        async with self.harness(workers=False) as harness:
            ctx = await self.prepared(harness)
            for hook in self.consumed():
                await harness.publish(ACCOUNT, SAMPLES[hook](), external_id=f"sample-{hook}")
            await producer.background_tasks_once(harness, self.name, ctx, TASK_TIMEOUT_SECONDS)
            await producer.malformed_requests(harness, self.name, ctx)
            harness.start_workers()
            await harness.settle(ACCOUNT)
            published = harness.published(self.name)
            problems = producer.events_round_trip(harness, self.name)
        if not published:
            _skip(f"{self.name} published no event in the harness (samples, background tasks, routes)")
        assert not problems, f"{self.name}:\n  " + "\n  ".join(problems)


def plugin_test_class(
    plugin: object, name: str, *, prepare: Prepare | None = None, observe: Observe | None = None
) -> type:
    """A pytest test class (bind it to a `Test…` name) checking `plugin` registered as `name`.

    `prepare(ctx)` readies an account (connects it to your sandbox) before events flow. `observe(ctx)` returns
    a snapshot (any value compared with `==`) of the plugin's side effects for that account in its backend;
    it is required when the plugin consumes a business hook, to check a repeated delivery does the work once.
    """
    kit = Kit(plugin, name, prepare, observe)

    class PluginConformance:
        def test_hooks_match_the_specs(self) -> None:
            assert name in kit.manager().names()

        def test_its_role_lets_events_reach_its_hooks(self) -> None:
            kit.role_fits_its_hooks()

        def test_settings_schema_fields_all_have_defaults(self) -> None:
            kit.settings_have_defaults()

        def test_integration_card_renders_for_a_new_account(self) -> None:
            _run(kit.card_renders())

        def test_routes_and_background_tasks_are_well_formed(self) -> None:
            _run(kit.routes_and_tasks_are_well_formed())

        def test_business_hooks_handle_a_sample_event(self) -> None:
            _run(kit.samples_are_handled())

        def test_side_effects_are_observable(self) -> None:
            kit.side_effects_are_observable()

        def test_a_repeated_delivery_does_the_work_once(self) -> None:
            _run(kit.repeats_do_the_work_once())

        def test_routes_refuse_malformed_requests_with_a_4xx(self) -> None:
            _run(kit.malformed_requests_are_refused())

        def test_background_tasks_run_for_an_unconnected_account(self) -> None:
            _run(kit.tasks_run_unconnected())

        def test_published_events_decode_through_the_core(self) -> None:
            _run(kit.published_events_round_trip())

    PluginConformance.__name__ = PluginConformance.__qualname__ = f"PluginConformance[{name}]"
    return PluginConformance
