"""The product's rules, owned by the core: one plugin per role, the sync start, nothing dropped silently."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import pytest
from ledgerbridge import (
    DeliveryContext,
    Event,
    EventType,
    InvoicePaid,
    Payment,
    PluginContext,
    hookimpl,
    register_event_type,
)
from ledgerbridge.hookspecs import hookspec
from ledgerbridge.plugins import PluginManager
from ledgerbridge.runtime import RoleConflict, Runtime
from ledgerbridge.samples import sample_invoice_paid
from ledgerbridge.testing.harness import settle
from ledgerbridge.web.app import create_app

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import Producer, Recorder, make_payment

ADMIN = {"Authorization": "Bearer test-admin-token"}


async def publish(runtime: Runtime, event_id: str, payment: Payment | None = None) -> None:
    ctx = await runtime.plugin_context("producer").account("acme")
    assert ctx is not None
    await ctx.publish(payment or make_payment(event_id), external_id=event_id)


def payments(recorder: Recorder) -> list[str]:
    return [p.payment_id for _, hook, p in recorder.calls if hook == "on_payment"]


async def test_a_second_set_of_books_is_refused_unless_switched_to_and_never_books_twice(make_runtime) -> None:
    first, second = Recorder(role="accounting"), Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "books-a": first, "books-b": second})
    await runtime.create_account("acme", "Acme")
    assert "books-a" in await runtime.enabled_plugins("acme")
    assert "books-b" not in await runtime.enabled_plugins("acme")  # one plugin per role from the start
    with pytest.raises(RoleConflict, match="switch from books-a to books-b"):
        await runtime.set_enabled("acme", "books-b", True)
    with pytest.raises(RoleConflict):
        await runtime.create_account("globex", "Globex", ["producer", "books-a", "books-b"])

    await publish(runtime, "pay-1")
    await settle(runtime, "acme")
    assert await runtime.set_enabled("acme", "books-b", True, switch=True) == "books-a"
    await publish(runtime, "pay-2")
    await settle(runtime, "acme")
    assert payments(first) == ["pay-1"] and payments(second) == ["pay-2"]


async def test_the_admin_api_answers_a_second_set_of_books_with_a_409_and_switches_on_request(
    tmp_path: Path,
) -> None:
    plugins = manager_with({"producer": Producer(), "books-a": Recorder(role="accounting"),
                            "books-b": Recorder(role="accounting")})  # fmt: skip
    app = create_app(fast_settings(tmp_path), plugins=plugins, mount_sandboxes=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=ADMIN) as client:
            await client.post("/admin/api/accounts", json={"name": "Acme"})
            refused = await client.put("/admin/api/accounts/acme/plugins/books-b", json={"enabled": True})
            assert refused.status_code == 409
            assert "books-a already keeps this account's books" in refused.json()["error"]["message"]
            switched = await client.put(
                "/admin/api/accounts/acme/plugins/books-b", json={"enabled": True, "switch": True}
            )
            assert switched.status_code == 200
            account = (await client.get("/admin/api/accounts/acme")).json()
            enabled = {p["name"] for p in account["plugins"] if p["enabled"]}
            assert {"books-b", "producer"} <= enabled and "books-a" not in enabled


async def test_a_payment_taken_while_the_books_were_off_is_kept_and_booked_once_when_sent(make_runtime) -> None:
    books = Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "books": books})
    await runtime.create_account("acme", "Acme")
    await runtime.set_enabled("acme", "books", False)
    await publish(runtime, "pay-while-off")
    await settle(runtime, "acme")
    [skipped] = await runtime.store.list_deliveries("acme", "skipped")
    assert skipped.plugin == "@accounting"
    assert skipped.last_error == "no books (accounting) plugin is on for this account (books is off)"
    assert payments(books) == []

    from ledgerbridge.web import operations
    from ledgerbridge.web.errors import ApiError

    account = await runtime.store.get_account("acme")
    assert account is not None
    with pytest.raises(ApiError, match="books is off"):
        await operations.send_skipped(runtime, account, [skipped.id])  # still off: nothing to send it to
    await runtime.set_enabled("acme", "books", True)
    reports = await asyncio.gather(*(operations.send_skipped(runtime, account) for _ in range(3)))
    assert sum(len(report["sent"]) for report in reports) == 1
    assert await settle(runtime, "acme") == {"done": 1}
    assert payments(books) == ["pay-while-off"]


async def test_documents_from_before_the_sync_start_are_skipped_with_the_reason_and_a_backfill_lets_them_through(
    make_runtime,
) -> None:
    books = Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "books": books})
    await runtime.create_account("acme", "Acme")
    last_week = msgspec.structs.replace(make_payment("pay-old"), paid_at=datetime.now(UTC) - timedelta(days=7))
    await publish(runtime, "pay-old", last_week)
    await settle(runtime, "acme")
    [skipped] = await runtime.store.list_deliveries("acme", "skipped")
    assert skipped.plugin == "books" and "before the sync start" in (skipped.last_error or "")
    activity = [entry.message for entry in await runtime.store.list_activity("acme")]
    assert any("before the sync start" in message for message in activity)

    await runtime.set_backfill("acme", (datetime.now(UTC) - timedelta(days=30)).timestamp())
    older = msgspec.structs.replace(make_payment("pay-older"), paid_at=datetime.now(UTC) - timedelta(days=10))
    await publish(runtime, "pay-older", older)
    await settle(runtime, "acme")
    assert payments(books) == ["pay-older"]


async def test_send_all_skipped_leaves_documents_from_before_the_sync_start_unless_chosen_one_by_one(
    make_runtime,
) -> None:
    from ledgerbridge.web import operations

    books = Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "books": books})
    await runtime.create_account("acme", "Acme")
    last_week = msgspec.structs.replace(make_payment("pay-old"), paid_at=datetime.now(UTC) - timedelta(days=7))
    await publish(runtime, "pay-old", last_week)
    await runtime.set_enabled("acme", "books", False)
    await publish(runtime, "pay-while-off")
    await settle(runtime, "acme")
    await runtime.set_enabled("acme", "books", True)
    account = await runtime.store.get_account("acme")
    assert account is not None

    report = await operations.send_skipped(runtime, account)
    assert len(report["sent"]) == 1
    [refused] = report["refused"]
    assert "before the sync start: set a backfill date, or send it by itself" in refused["reason"]
    await settle(runtime, "acme")
    assert payments(books) == ["pay-while-off"]

    await operations.send_skipped(runtime, account, [refused["id"]])  # chosen by itself: the user's call
    await settle(runtime, "acme")
    assert payments(books) == ["pay-while-off", "pay-old"]


class StatefulBooks:
    """A class-based plugin: the core builds one per server with its context; state lives on the instance."""

    role = "accounting"
    built: list[StatefulBooks] = []

    def __init__(self, plugin: PluginContext) -> None:
        self.plugin = plugin
        self.booked: list[str] = []
        StatefulBooks.built.append(self)

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        assert ctx.plugin_context is self.plugin
        self.booked.append(payment.payment_id)


async def test_a_plugin_class_is_built_once_per_server_with_its_own_context(make_runtime) -> None:
    StatefulBooks.built.clear()
    first = await make_runtime({"producer": Producer(), "books": StatefulBooks})
    second = await make_runtime(
        {"producer": Producer(), "books": StatefulBooks}, workers=False
    )  # shares the first one's store: only the first delivers
    assert len(StatefulBooks.built) == 2 and StatefulBooks.built[0] is not StatefulBooks.built[1]
    await first.create_account("acme", "Acme")
    await publish(first, "pay-1")
    await settle(first, "acme")
    assert first.plugins.plugin("books").booked == ["pay-1"]  # type: ignore[attr-defined]
    assert second.plugins.plugin("books").booked == []  # type: ignore[attr-defined]


def test_the_core_names_no_vendor() -> None:
    core = Path(__file__).parents[2] / "core" / "ledgerbridge"
    vendors = ("quickbooks", "intuit", "highlevel", "crm connect", "crmconnect", "xero", "qbo")
    offenders = []
    for path in sorted(core.rglob("*")):
        if path.suffix not in (".py", ".html", ".js", ".css"):
            continue
        text = path.read_text().lower()
        offenders += [f"{path.relative_to(core)}: {name}" for name in vendors if name in text]
    assert offenders == []


class Auditor:
    """An observer: no role, it subscribes to the facts it wants."""

    subscribes = ("invoice_paid",)

    def __init__(self) -> None:
        self.facts: list[InvoicePaid] = []

    @hookimpl
    async def on_invoice_paid(self, ctx: DeliveryContext, fact: InvoicePaid) -> None:
        self.facts.append(fact)


async def test_an_observer_gets_only_what_it_subscribes_to(make_runtime) -> None:
    auditor = Auditor()
    runtime = await make_runtime({"producer": Producer(), "books": Recorder(role="accounting"), "audit": auditor})
    await runtime.create_account("acme", "Acme")
    ctx = await runtime.plugin_context("producer").account("acme")
    assert ctx is not None
    await ctx.publish(sample_invoice_paid(), external_id="fact-1")
    await publish(runtime, "pay-1")
    await settle(runtime, "acme")
    assert [fact.invoice_id for fact in auditor.facts] == ["130"]


class Refunded(Event, tag="test_refund_note", frozen=True):
    payment_id: str

    @property
    def object_key(self) -> str:
        return f"payment:{self.payment_id}"


class RefundNoteSpecs:
    @staticmethod
    @hookspec
    def on_refund_note(ctx: DeliveryContext, note: Refunded) -> None:
        """A third party's own event type."""


class NoteTaker:
    role = "accounting"

    def __init__(self) -> None:
        self.notes: list[str] = []

    @hookimpl
    async def on_refund_note(self, ctx: DeliveryContext, note: Refunded) -> None:
        self.notes.append(note.payment_id)


async def test_a_third_party_adds_an_event_type_without_touching_the_core(tmp_path: Path) -> None:
    register_event_type(EventType("test_refund_note", Refunded, "on_refund_note", "note", "accounting"))
    taker = NoteTaker()
    manager = PluginManager()
    manager.add_hookspecs(RefundNoteSpecs)
    manager.register(Producer(), "producer")
    manager.register(taker, "notes")
    manager.check_pending()
    runtime = Runtime(fast_settings(tmp_path), manager)
    await runtime.start()
    try:
        await runtime.create_account("acme", "Acme")
        ctx = await runtime.plugin_context("producer").account("acme")
        assert ctx is not None
        await ctx.publish(Refunded(payment_id="p-1"), external_id="note-1")
        await settle(runtime, "acme")
        assert taker.notes == ["p-1"]
    finally:
        await runtime.stop()


async def test_a_plugin_on_for_the_account_but_uninstalled_neither_breaks_intake_nor_delivery(make_runtime) -> None:
    books = Recorder(role="accounting")
    runtime = await make_runtime({"producer": Producer(), "books": books})
    await runtime.create_account("acme", "Acme")
    await runtime.store.set_plugin_enabled("acme", "gone", True)  # enabled once, since uninstalled
    runtime.forget_account("acme")
    await publish(runtime, "pay-1")
    assert await settle(runtime, "acme") == {"done": 1}
    assert payments(books) == ["pay-1"]
