"""Webhook signatures (Intuit's public vectors), signed deliveries, ordering and retries."""

from __future__ import annotations

import asyncio
import json

from ledgerbridge.testing import running_server
from ledgerbridge_quickbooks.sandbox import AppRegistration, SandboxConfig, create_app, sign, verify
from ledgerbridge_quickbooks.sandbox.webhooks import SCHEDULE, Dispatcher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

VECTOR_BODY = (
    '{"eventNotifications":[{"realmId":"1269959970","dataChangeEvent":{"entities":[{"name":"Vendor","id":"40",'
    '"operation":"Update","lastUpdated":"2016-10-05T03:09:04.000Z"},{"name":"Customer","id":"43","operation":'
    '"Create","lastUpdated":"2016-10-05T03:07:04.000Z"}]}}]}'
)


def test_intuit_public_vectors() -> None:
    assert sign("verify_me", b'{"stuff":"5"}') == "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA="
    assert verify("verify_me", b'{"stuff":"5"}', "nfPLN16u3vMvv08ghDs+dOkLuirEVDy5wAeG/lmM2OA=")
    token = "00faeec4-08d0-4996-bb37-698ae19f0149"
    assert verify(token, VECTOR_BODY.encode(), "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=")
    assert not verify(token, VECTOR_BODY.encode() + b" ", "6q+xGyMirJupwKTh2/WBl2NcdxzxqdIbk3sneKTxLWM=")


def test_retry_schedule_is_intuits_and_scaled() -> None:
    dispatcher = Dispatcher.__new__(Dispatcher)
    dispatcher.time_scale = 10
    assert SCHEDULE == (0, 10, 20, 30, 300, 1200, 7200, 14400, 21600)
    assert [dispatcher._delay(n) for n in (0, 1, 4, 8, 9, 30)] == [0, 1, 30, 2160, 2160, 2160]


class Receiver:
    """A loopback endpoint that fails the first `failures` deliveries with 500."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[bytes, str, int]] = []
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        status = 500 if self.failures > 0 else 200
        self.failures -= 1
        self.received.append((body, request.headers["intuit-signature"], status))
        return Response(status_code=status)

    async def wait_for(self, count: int) -> None:
        for _ in range(500):
            if len(self.received) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {len(self.received)} deliveries arrived")


async def test_deliveries_are_signed_ordered_and_retried() -> None:
    receiver = Receiver(failures=1)
    async with running_server(receiver.app) as hook_url:
        app_reg = AppRegistration("hooked", "secret", [], "vt-123", webhook_url=hook_url + "/hook")
        config = SandboxConfig(apps=[app_reg], time_scale=100)
        app = create_app(config)
        async with running_server(app) as url:
            sandbox = app.state.sandbox
            sandbox.base_url = url
            realm = next(iter(sandbox.companies))
            sandbox.issue_tokens("hooked", realm)
            books = sandbox.books(realm)
            books.create("Customer", {"DisplayName": "First"})
            await receiver.wait_for(1)
            books.create("Customer", {"DisplayName": "Second"})
            await asyncio.sleep(0.05)
            assert len(receiver.received) == 1  # the second event waits for the first one's 200
            await receiver.wait_for(3)
    first, retry, second = receiver.received
    assert first[0] == retry[0] and (first[2], retry[2], second[2]) == (500, 200, 200)
    for body, signature, _ in receiver.received:
        assert verify("vt-123", body, signature)
    entities = [json.loads(b)["eventNotifications"][0]["dataChangeEvent"]["entities"][0] for b in (first[0], second[0])]
    assert [(e["name"], e["id"], e["operation"]) for e in entities] == [("Customer", "1", "Create"),
                                                                        ("Customer", "2", "Create")]  # fmt: skip
    history = sandbox.dispatcher.history
    assert [len(d.attempts) for d in history] == [2, 1] and all(d.delivered for d in history)


async def test_cloudevents_format_groups_changes() -> None:
    receiver = Receiver(failures=0)
    async with running_server(receiver.app) as hook_url:
        app_reg = AppRegistration(
            "ce", "secret", [], "vt", webhook_url=hook_url + "/hook", webhook_format="cloudevents"
        )
        app = create_app(SandboxConfig(apps=[app_reg], time_scale=10))
        async with running_server(app) as url:
            sandbox = app.state.sandbox
            sandbox.base_url = url
            realm = next(iter(sandbox.companies))
            sandbox.issue_tokens("ce", realm)
            books = sandbox.books(realm)
            customer = books.create("Customer", {"DisplayName": "Ce"})
            invoice = books.create("Invoice", {"CustomerRef": {"value": customer["Id"]},
                                               "Line": [{"Amount": 5, "DetailType": "SalesItemLineDetail"}]})  # fmt: skip
            books.void("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]})
            await receiver.wait_for(1)
    events = json.loads(receiver.received[0][0])
    assert [e["type"] for e in events] == ["qbo.customer.created.v1", "qbo.invoice.created.v1", "qbo.invoice.voided.v1"]
    assert all(e["specversion"] == "1.0" and e["intuitaccountid"] == realm for e in events)
    assert verify("vt", receiver.received[0][0], receiver.received[0][1])
