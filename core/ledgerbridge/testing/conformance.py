"""A conformance suite a plugin author runs against their own plugin.

In the plugin's tests:

    from ledgerbridge.testing.conformance import plugin_test_class
    import my_plugin

    TestConformance = plugin_test_class(my_plugin, "myplugin")

pytest then collects checks that the plugin fits the hook specs, that its settings, card, routes and
background tasks are well-formed, and that every business hook it implements handles a sample event
through a real core, twice over the same delivery without doing the work twice (`idempotent`).
Pass `prepare` to connect the plugin for an account (e.g. to your sandbox) before events flow.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from ledgerbridge import events
from ledgerbridge.cards import IntegrationCard
from ledgerbridge.context import AccountContext
from ledgerbridge.models import Event
from ledgerbridge.plugins import PluginManager
from ledgerbridge.tasks import BackgroundTask
from ledgerbridge.testing.harness import PluginHarness

Prepare = Callable[[AccountContext], Awaitable[None]]
Observe = Callable[[AccountContext], Awaitable[Any]]

SAMPLES: dict[str, Callable[[], Event]] = {
    definition.hook: definition.sample for definition in events.event_types().values() if definition.sample is not None
}


def plugin_test_class(
    plugin: object, name: str, *, prepare: Prepare | None = None, observe: Observe | None = None
) -> type:
    """A pytest test class (bind it to a `Test…` name) checking `plugin` registered as `name`.

    `prepare(ctx)` readies an account (connects it to your sandbox); `observe(ctx)` returns a snapshot of
    the plugin's side effects (documents in your backend) that a repeated delivery must leave unchanged.
    """

    def manager() -> PluginManager:
        plugins = PluginManager()
        plugins.register(plugin, name)
        plugins.check_pending()
        return plugins

    async def prepared(harness: PluginHarness) -> AccountContext:
        ctx = await harness.account("conformance", name)
        if prepare is not None:
            await prepare(ctx)
        return ctx

    class PluginConformance:
        def test_hooks_match_the_specs(self) -> None:
            assert name in manager().names()

        def test_settings_schema_fields_all_have_defaults(self) -> None:
            schema = manager().settings_schema(name)
            if schema is None:
                return
            instance = schema()  # every field needs a default: a new account has no settings yet
            assert isinstance(msgspec.to_builtins(instance), dict)

        async def test_integration_card_renders_for_a_new_account(self) -> None:
            async with PluginHarness({name: plugin}) as harness:
                ctx = await harness.account("conformance", name)
                card = await harness.core.plugins.card(name, ctx)
                assert card is None or isinstance(card, IntegrationCard)
                if card is not None:
                    msgspec.json.encode(card)

        async def test_routes_and_background_tasks_are_well_formed(self) -> None:
            from starlette.routing import BaseRoute

            async with PluginHarness({name: plugin}) as harness:
                runtime = harness.core
                context = runtime.plugin_context(name)
                assert all(isinstance(r, BaseRoute) for r in runtime.plugins.routes(name, context))
                tasks = runtime.plugins.background_tasks(name, context)
                assert all(isinstance(t, BackgroundTask) and t.every_seconds > 0 for t in tasks)

        async def test_business_hooks_handle_a_sample_event_once(self) -> None:
            plugins = manager()
            hooks = [hook for hook in SAMPLES if plugins.implements(name, hook)]
            async with PluginHarness({name: plugin}) as harness:
                await prepared(harness)
                for number, hook in enumerate(hooks):
                    await harness.publish("conformance", SAMPLES[hook](), external_id=f"sample-{number}")
                counts = await harness.settle("conformance")
                dead = await harness.dead_letters("conformance")
                assert not dead, f"{name} dead-lettered a sample event: {dead}"
                assert counts.get("done", 0) + counts.get("skipped", 0) == len(hooks)

        async def test_a_repeated_delivery_is_harmless(self) -> None:
            plugins = manager()
            async with PluginHarness({name: plugin}) as harness:
                ctx = await prepared(harness)
                for hook in (h for h in SAMPLES if plugins.implements(name, h)):
                    await harness.publish("conformance", SAMPLES[hook](), external_id=f"repeat-{hook}")
                await harness.settle("conformance")
                before = await observe(ctx) if observe else None
                runtime = harness.core
                # a lease that expired mid-delivery hands the same delivery out again: simulate it
                for delivery in await runtime.store.list_deliveries("conformance", "done"):
                    await _deliver_again(runtime, delivery.id, delivery.event_seq, name)
                if observe is not None:
                    assert await observe(ctx) == before, f"{name} did the work of a repeated delivery twice"

    PluginConformance.__name__ = PluginConformance.__qualname__ = f"PluginConformance[{name}]"
    return PluginConformance


async def _deliver_again(runtime: Any, delivery_id: int, event_seq: int, plugin: str) -> None:
    from ledgerbridge.context import DeliveryContext
    from ledgerbridge.events import decode_event

    record = await runtime.store.get_event("conformance", event_seq)
    account = await runtime.store.get_account("conformance")
    ctx = DeliveryContext(
        runtime,
        plugin,
        account,
        delivery_id=delivery_id,
        attempt=2,
        event_type=record.type,
        event_external_id=record.external_id,
        source=record.source,
        received_at=record.received_at,
    )
    assert record.type in events.event_types()
    await runtime.plugins.deliver(plugin, ctx, decode_event(record.payload))
