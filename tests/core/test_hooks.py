"""Every hook, exercised through a real core: the business hooks get their events, the plugging-in hooks
are called when and where the specs say."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledgerbridge import (
    AccountContext,
    BackgroundTask,
    CardField,
    IntegrationCard,
    PluginContext,
    ReauthorizationRequired,
    SandboxSpec,
    hookimpl,
)
from ledgerbridge.models import Event
from ledgerbridge.testing import running_server
from ledgerbridge.testing.harness import (
    sample_contact_sync,
    sample_first_invoice_paid,
    sample_invoice_change,
    sample_payment,
)
from ledgerbridge.web.app import create_app
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import Producer, Recorder


@pytest.mark.parametrize(
    ("event", "hook"),
    [
        (sample_payment(), "on_payment"),
        (sample_invoice_change("paid"), "on_invoice_change"),
        (sample_contact_sync(), "on_contact_sync"),
        (sample_first_invoice_paid(), "on_first_invoice_paid"),
    ],
)
async def test_each_business_hook_receives_its_event(make_runtime, event: Event, hook: str) -> None:
    recorder = Recorder()
    runtime = await make_runtime({"producer": Producer(), "sink": recorder})
    await runtime.create_account("acme", "Acme")
    ctx = await runtime.plugin_context("producer").account("acme")
    await ctx.publish(event, external_id="evt")
    await recorder.wait_for(1)
    assert recorder.calls == [("acme", hook, event)]


async def test_on_notification_goes_back_to_its_producer_only(make_runtime) -> None:
    producer, bystander = Recorder(), Recorder()
    runtime = await make_runtime({"vendor": producer, "bystander": bystander})
    await runtime.create_account("acme", "Acme")
    ctx = await runtime.plugin_context("vendor").account("acme")
    assert await ctx.notify("InvoiceSent", {"_id": "inv-1"}, external_id="wh-1", object_key="invoice:inv-1")
    await producer.wait_for(1)
    [(account, hook, notification)] = producer.calls
    assert (account, hook, notification.kind, notification.payload) == (
        "acme",
        "on_notification",
        "InvoiceSent",
        {"_id": "inv-1"},
    )
    await asyncio.sleep(0.1)
    assert bystander.calls == []


class Lifecycle:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.ticks: list[str] = []
        self.refuse: set[str] = set()

    @hookimpl
    async def startup(self, plugin: PluginContext) -> None:
        self.calls.append(f"startup:{plugin.name}")

    @hookimpl
    def shutdown(self, plugin: PluginContext) -> None:
        self.calls.append(f"shutdown:{plugin.name}")

    @hookimpl
    def background_tasks(self, plugin: PluginContext) -> list[BackgroundTask]:
        async def tick(ctx: AccountContext) -> None:
            self.ticks.append(ctx.account_id)
            if ctx.account_id in self.refuse:
                raise ReauthorizationRequired("token revoked")

        return [BackgroundTask(name="poller", every_seconds=0.05, run=tick)]

    @hookimpl
    async def integration_card(self, ctx: AccountContext) -> IntegrationCard:
        return IntegrationCard(
            title="Lifecycle", status="ready", fields=(CardField(label="Account", value=ctx.account_id),)
        )


async def test_startup_and_shutdown_bracket_the_server(make_runtime) -> None:
    plugin = Lifecycle()
    runtime = await make_runtime({"life": plugin})
    assert plugin.calls == ["startup:life"]
    await runtime.stop()
    assert plugin.calls == ["startup:life", "shutdown:life"]
    await runtime.store.open()  # the fixture stops it again


async def test_background_tasks_run_per_enabled_account_and_pause_on_reauthorization(make_runtime) -> None:
    plugin = Lifecycle()
    plugin.refuse.add("globex")
    runtime = await make_runtime({"life": plugin})
    await runtime.create_account("acme", "Acme")
    await runtime.create_account("globex", "Globex")
    await runtime.create_account("initech", "Initech", plugins=[])
    await asyncio.sleep(0.4)
    assert plugin.ticks.count("acme") >= 3
    assert plugin.ticks.count("globex") == 1  # refused once, then paused
    assert "initech" not in plugin.ticks
    assert (await runtime.store.get_plugin_state("globex", "life")).paused_reason == "token revoked"


async def test_integration_card_through_the_admin_api(tmp_path: Path) -> None:
    app = create_app(fast_settings(tmp_path), plugins=manager_with({"life": Lifecycle()}), mount_sandboxes=False)
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as client:
        headers = {"Authorization": "Bearer test-admin-token"}
        await client.post("/admin/api/accounts", json={"name": "Acme"}, headers=headers)
        card = (await client.get("/admin/api/accounts/acme/plugins/life/card", headers=headers)).json()
        assert card["title"] == "Lifecycle" and card["fields"] == [{"label": "Account", "value": "acme"}]


class Vendor:
    """A plugin shipping a sandbox, as the built-in plugins do."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, str]] = []

    @hookimpl
    def register_sandboxes(self) -> list[SandboxSpec]:
        def add_arguments(parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--greeting", default="hello from the sandbox")

        def make_app(args: argparse.Namespace, base_url: str) -> Starlette:
            self.seen.append((args.greeting, base_url))
            return Starlette(routes=[Route("/ping", lambda request: PlainTextResponse(args.greeting))])

        return [SandboxSpec(name="vendor", description="a vendor", add_arguments=add_arguments, create_app=make_app)]

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> list[Route]:
        async def where(request: Any) -> PlainTextResponse:
            return PlainTextResponse(plugin.sandbox_url("vendor") or "none")

        return [Route("/sandbox-url", where)]


async def test_sandboxes_are_mounted_by_serve_and_known_to_plugins(tmp_path: Path) -> None:
    vendor = Vendor()
    settings = fast_settings(tmp_path, public_url="http://lb.example:9000")
    app = create_app(settings, plugins=manager_with({"vendor": vendor}))
    assert vendor.seen == [("hello from the sandbox", "http://lb.example:9000/sandbox/vendor")]
    async with running_server(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/sandbox/vendor/ping")).text == "hello from the sandbox"
        assert (await client.get("/plugins/vendor/sandbox-url")).text == "http://lb.example:9000/sandbox/vendor"

    bare = create_app(settings, plugins=manager_with({"vendor": Vendor()}), mount_sandboxes=False)
    async with running_server(bare) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/sandbox/vendor/ping")).status_code == 404
