"""What an operator sees: /metrics after real webhooks and deliveries, a request id from the webhook to the vendor
call, and log lines in JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from ledgerbridge import DeliveryContext, Payment, PluginContext, hookimpl
from ledgerbridge.errors import RetryLater
from ledgerbridge.observability import configure_logging, instrument
from ledgerbridge.runtime import Runtime
from ledgerbridge.web import ApiError, parse_json, read_body
from ledgerbridge.web.app import create_app
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.core.conftest import RuntimeFactory
from tests.core.plugins import make_payment

ADMIN = {"Authorization": "Bearer test-admin-token"}
ACCOUNT_NAME = "Zebulon Private Holdings"


class Hooks:
    """A producer whose webhook route is where every built-in plugin has it: POST /plugins/<name>/webhooks."""

    @hookimpl
    def register_routes(self, plugin: PluginContext) -> list[Route]:
        async def receive(request: Request) -> Response:
            body = parse_json(await read_body(request))
            if not isinstance(body, dict) or not {"account", "id"} <= body.keys():
                raise ApiError(422, "expected an object with account and id")
            ctx = await plugin.account(str(body["account"]))
            if ctx is None:
                raise ApiError(404, f"no account {body['account']!r}")
            payment = make_payment(str(body["id"]), str(body.get("amount", "10.00")))
            new = await ctx.publish(payment, external_id=str(body["id"]))
            return JSONResponse({"stored": new})

        return [Route("/webhooks", receive, methods=["POST"])]


class Books:
    """The account's books: writes each payment to a vendor through an instrumented httpx client."""

    role = "accounting"

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.http = instrument(
            httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="https://books.example"),
            vendor="quickbooks",
            vendor_id_header="intuit_tid",
        )
        self.written: list[str] = []
        self.wrote = asyncio.Event()

    @hookimpl
    async def on_payment(self, ctx: DeliveryContext, payment: Payment) -> None:
        response = await self.http.post(
            "/v3/company/4620816365/payment",
            params={"requestid": ctx.idempotency_key, "payer": payment.payer.email},
            json={"TotalAmt": str(payment.total.amount)},
        )
        if response.status_code == 429:
            raise RetryLater("throttled by the vendor", retry_after=0.01)
        response.raise_for_status()
        self.written.append(payment.payment_id)
        self.wrote.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.written) < count:
                self.wrote.clear()
                await self.wrote.wait()


def vendor_answer(throttle_first: set[str]) -> Callable[[httpx.Request], httpx.Response]:
    """200 with Intuit's transaction id, or one 429 first for payments in `throttle_first`."""
    calls: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        payment = json.loads(request.content)["TotalAmt"]
        key = request.url.params["requestid"]
        calls[key] = calls.get(key, 0) + 1
        if payment in throttle_first and calls[key] == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"Payment": {"Id": "1"}}, headers={"intuit_tid": f"tid-{key}"})

    return answer


@dataclass
class Served:
    runtime: Runtime
    books: Books
    client: httpx.AsyncClient
    account_id: str

    async def webhook(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.client.post("/plugins/hooks/webhooks", json=body, headers=headers)

    async def settled(self) -> None:
        """Every delivery to the books finished (the hook returning is not the delivery being recorded)."""
        for _ in range(500):
            deliveries = await self.runtime.store.list_deliveries(self.account_id, plugin="books")
            if deliveries and all(d.state != "pending" for d in deliveries):
                return
            await asyncio.sleep(0.02)
        raise AssertionError("deliveries still pending after 10 s")

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = await self.client.get("/metrics", headers=ADMIN)
        assert response.status_code == 200, response.text
        return parse(response.text)


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def serve(make_runtime: RuntimeFactory, books: Books, **settings: Any) -> AsyncIterator[Served]:
    runtime = await make_runtime({"hooks": Hooks(), "books": books}, **settings)
    app = create_app(runtime=runtime, mount_sandboxes=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        created = await client.post("/admin/api/accounts", json={"name": ACCOUNT_NAME}, headers=ADMIN)
        assert created.status_code == 201, created.text
        yield Served(runtime, books, client, created.json()["id"])
    await books.http.aclose()


@pytest.fixture
async def served(make_runtime: RuntimeFactory) -> AsyncIterator[Served]:
    async for result in serve(make_runtime, Books(vendor_answer(throttle_first={"20.00"}))):
        yield result


async def test_metrics_count_webhooks_deliveries_and_vendor_calls_without_naming_accounts(served: Served) -> None:
    before = await served.metrics()
    account = served.account_id
    assert (await served.webhook({"account": account, "id": "pay-1"})).status_code == 200
    assert (await served.webhook({"account": account, "id": "pay-2"})).status_code == 200
    assert (await served.webhook({"account": "nobody", "id": "pay-3"})).status_code == 404
    assert (await served.webhook({"id": "pay-4"})).status_code == 422
    await served.settled()
    after = await served.metrics()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("ledgerbridge_webhooks_received_total", plugin="hooks") == 4
    assert grew("ledgerbridge_webhooks_refused_total", plugin="hooks", reason="not_found") == 1
    assert grew("ledgerbridge_webhooks_refused_total", plugin="hooks", reason="malformed") == 1
    assert grew("ledgerbridge_deliveries_finished_total", plugin="books", outcome="done") == 2
    assert grew("ledgerbridge_vendor_requests_total", vendor="quickbooks", status="200") == 2
    assert grew("ledgerbridge_vendor_request_seconds_count", vendor="quickbooks") == 2
    assert grew("ledgerbridge_claim_lag_seconds_count", plugin="books") == 2
    assert grew("ledgerbridge_delivery_seconds_count", plugin="books") == 2
    assert value(after, "ledgerbridge_store_up") == 1
    assert value(after, "ledgerbridge_deliveries", state="pending") == 0
    assert value(after, "ledgerbridge_deliveries", state="leased") == 0
    assert value(after, "ledgerbridge_oldest_due_delivery_age_seconds") == 0

    text = (await served.client.get("/metrics", headers=ADMIN)).text
    assert ACCOUNT_NAME not in text
    assert account not in text
    assert "test-admin-token" not in text


async def test_a_vendor_429_is_counted_and_the_delivery_retried(served: Served) -> None:
    before = await served.metrics()
    # the vendor answers 429 to the first write of a 20.00 payment
    assert (await served.webhook({"account": served.account_id, "id": "slow-1", "amount": "20.00"})).status_code == 200
    await served.settled()
    after = await served.metrics()
    assert (
        value(after, "ledgerbridge_vendor_throttled_total", vendor="quickbooks")
        - value(before, "ledgerbridge_vendor_throttled_total", vendor="quickbooks")
        == 1
    )
    assert (
        value(after, "ledgerbridge_delivery_retries_total", plugin="books")
        - value(before, "ledgerbridge_delivery_retries_total", plugin="books")
        == 1
    )


async def test_paused_plugins_and_waiting_deliveries_show_as_gauges(served: Served) -> None:
    await served.runtime.pause(served.account_id, "books", "the QuickBooks connection was revoked")
    assert (await served.webhook({"account": served.account_id, "id": "held-1"})).status_code == 200
    assert (await served.webhook({"account": served.account_id, "id": "held-2"})).status_code == 200
    samples = await served.metrics()
    assert value(samples, "ledgerbridge_plugins_paused", plugin="books") == 1
    assert value(samples, "ledgerbridge_deliveries", state="pending") == 2
    assert served.books.written == []


async def test_metrics_need_the_admin_token(served: Served) -> None:
    refused = await served.client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    wrong = await served.client.get("/metrics", headers={"Authorization": "Bearer not-the-admin-token"})
    assert wrong.status_code == 401
    allowed = await served.client.get("/metrics", headers=ADMIN)
    assert allowed.status_code == 200
    assert allowed.headers["content-type"].startswith("text/plain; version=")


async def test_metrics_open_to_a_scraper_without_a_token_only_when_the_operator_opts_in(
    make_runtime: RuntimeFactory,
) -> None:
    async for served in serve(make_runtime, Books(vendor_answer(set())), metrics_public=True):
        response = await served.client.get("/metrics")
        assert response.status_code == 200
        assert "ledgerbridge_deliveries" in response.text


async def test_the_request_id_follows_an_event_from_its_webhook_to_the_vendor_call(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ledgerbridge.vendor")
    response = await served.webhook({"account": served.account_id, "id": "traced-1"}, {"X-Request-ID": "lb-trace-7"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "lb-trace-7"
    await served.books.wait_for(1)

    (delivery,) = await served.runtime.store.list_deliveries(served.account_id, plugin="books")
    event = await served.runtime.store.get_event(served.account_id, delivery.event_seq)
    assert event is not None and event.request_id == "lb-trace-7"

    (record,) = [r for r in caplog.records if r.name == "ledgerbridge.vendor"]
    assert record.__dict__["request_id"] == "lb-trace-7"
    assert record.__dict__["account"] == served.account_id
    assert record.__dict__["plugin"] == "books"
    assert record.__dict__["delivery_id"] == delivery.id
    assert record.__dict__["vendor_request_id"] == f"tid-lb-{delivery.id}"
    assert record.getMessage().startswith("quickbooks POST /v3/company/4620816365/payment -> 200 in ")
    assert "ada@example.com" not in record.getMessage()  # the query string (here an e-mail) is never logged


async def test_a_request_without_a_usable_request_id_gets_one_of_its_own(served: Served) -> None:
    generated = await served.webhook({"account": served.account_id, "id": "untraced-1"})
    forged = await served.webhook(
        {"account": served.account_id, "id": "untraced-2"}, {"X-Request-ID": "evil\tline injected"}
    )
    too_long = await served.client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    ids = [r.headers["x-request-id"] for r in (generated, forged, too_long)]
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)  # a random prefix per process and a counter
    assert len(set(ids)) == 3
    await served.books.wait_for(2)
    stored = set()
    for delivery in await served.runtime.store.list_deliveries(served.account_id, plugin="books"):
        event = await served.runtime.store.get_event(served.account_id, delivery.event_seq)
        assert event is not None
        stored.add(event.request_id)
    assert stored == set(ids[:2])


async def test_events_published_outside_a_request_have_no_request_id(served: Served) -> None:
    await served.runtime.publish(served.account_id, "hooks", "polled-1", make_payment("polled-1"))
    await served.books.wait_for(1)
    (delivery,) = await served.runtime.store.list_deliveries(served.account_id, plugin="books")
    event = await served.runtime.store.get_event(served.account_id, delivery.event_seq)
    assert event is not None and event.request_id is None


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "ledgerbridge", False)]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_json_log_lines_are_one_object_each_with_the_delivery_they_are_about(
    served: Served, log_lines: io.StringIO
) -> None:
    configure_logging("json", "info", stream=log_lines)
    response = await served.webhook({"account": served.account_id, "id": "json-1"}, {"X-Request-ID": "json-trace"})
    assert response.status_code == 200
    await served.settled()
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    about = [line for line in lines if line["request_id"] == "json-trace"]
    assert {line["logger"] for line in about} == {"ledgerbridge.vendor", "ledgerbridge.dispatcher"}
    assert "ada@example.com" not in log_lines.getvalue()  # httpx's own lines (full URLs) are not at INFO
    for line in about:
        assert {"ts", "level", "logger", "msg", "request_id", "account", "plugin", "delivery_id"} <= line.keys()
        assert line["account"] == served.account_id and line["plugin"] == "books"
        assert isinstance(line["delivery_id"], int)
    vendor = next(line for line in about if line["logger"] == "ledgerbridge.vendor")
    assert vendor["status"] == 200 and vendor["vendor"] == "quickbooks"


async def test_text_log_lines_stay_readable_and_name_the_request(served: Served, log_lines: io.StringIO) -> None:
    configure_logging("text", "info", stream=log_lines)
    await served.webhook({"account": served.account_id, "id": "text-1"}, {"X-Request-ID": "text-trace"})
    await served.books.wait_for(1)
    vendor = next(line for line in log_lines.getvalue().splitlines() if "ledgerbridge.vendor" in line)
    assert " INFO ledgerbridge.vendor: quickbooks POST /v3/company/4620816365/payment -> 200 in " in vendor
    assert f"[request_id=text-trace account={served.account_id} plugin=books delivery_id=" in vendor


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LEDGERBRIDGE_LOG_FORMAT"):
        configure_logging("yaml")


async def test_instrumenting_a_client_twice_counts_each_call_once() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    instrument(instrument(client, vendor="acme-twice"), vendor="acme-twice")
    async with client:
        await client.get("https://acme.example/things")
    text = (await asyncio.to_thread(_exposition)).decode()
    assert value(parse(text), "ledgerbridge_vendor_requests_total", vendor="acme-twice", status="204") == 1


def _exposition() -> bytes:
    from prometheus_client import REGISTRY, generate_latest

    return generate_latest(REGISTRY)
