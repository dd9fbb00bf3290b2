"""Webhooks: nothing is sent before intent to receive passes; events are signed with the webhook key; the
control API acts as the Xero user."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import httpx
from ledgerbridge.testing import running_server
from ledgerbridge_xero.sandbox import create_app, sign, verify
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .conftest import WEBHOOK_KEY, connect, make_config


def receiver(received: list[dict], *, check_signature: bool) -> Starlette:
    async def hook(request: Request) -> Response:
        body = await request.body()
        if check_signature and not verify(WEBHOOK_KEY, body, request.headers.get("x-xero-signature", "")):
            return Response(status_code=401)
        received.append(json.loads(body))
        return Response(status_code=200)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def _until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async def loop() -> None:
        while not check():  # noqa: ASYNC110 - the condition lives in another server's state
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), timeout)


async def _run(
    check_signature: bool, scenario: Callable[[httpx.AsyncClient, object, list[dict]], Awaitable[None]]
) -> None:
    received: list[dict] = []
    async with running_server(receiver(received, check_signature=check_signature)) as hook_url:
        app = create_app(make_config(webhook_url=hook_url + "/hook"))
        async with running_server(app) as url, httpx.AsyncClient(base_url=url) as http:
            app.state.sandbox.config.base_url = url
            await scenario(http, app.state.sandbox, received)


async def test_signed_events_follow_a_passed_intent_to_receive() -> None:
    async def scenario(http: httpx.AsyncClient, engine: object, received: list[dict]) -> None:
        xero = await connect(http, engine)  # type: ignore[arg-type]
        made = await http.post(
            f"/control/organisations/{xero.tenant_id}/contacts", json={"Name": "Ada", "EmailAddress": "ada@example.com"}
        )
        assert made.status_code == 200, made.text
        await _until(lambda: any(batch["events"] for batch in received))
        assert received[0]["events"] == []  # the intent-to-receive batch, correctly signed
        event = next(batch for batch in received if batch["events"])["events"][0]
        assert (event["eventCategory"], event["eventType"], event["resourceId"], event["tenantId"]) == (
            "CONTACT",
            "CREATE",
            made.json()["ContactID"],
            xero.tenant_id,
        )
        assert event["resourceUrl"].endswith(f"/api.xro/2.0/Contacts/{made.json()['ContactID']}")
        status = (await http.get("/control/webhooks")).json()
        assert next(iter(status.values()))["status"] == "OK"

    await _run(True, scenario)


async def test_a_receiver_that_accepts_bad_signatures_fails_the_check_and_gets_nothing() -> None:
    async def scenario(http: httpx.AsyncClient, engine: object, received: list[dict]) -> None:
        xero = await connect(http, engine)  # type: ignore[arg-type]
        await http.post(f"/control/organisations/{xero.tenant_id}/contacts", json={"Name": "Ada"})
        await _until(lambda: len(received) >= 2)
        await asyncio.sleep(0.2)
        assert all(batch["events"] == [] for batch in received)
        status = (await http.get("/control/webhooks")).json()
        assert next(iter(status.values()))["status"] == "FAILED"

    await _run(False, scenario)


def test_signature_is_base64_hmac_sha256_of_the_body() -> None:
    # computed independently: base64(HMAC-SHA256("key", b'{"events":[]}'))
    import base64
    import hashlib
    import hmac

    body = b'{"events":[]}'
    assert sign("key", body) == base64.b64encode(hmac.new(b"key", body, hashlib.sha256).digest()).decode()
    assert not verify("key", body, sign("other", body))


async def test_control_pays_an_invoice_and_reports_validation() -> None:
    app = create_app(make_config())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://xero.test") as http:
        tenant = app.state.sandbox.by_name("Demo Company (US)").tenant_id
        contact = (await http.post(f"/control/organisations/{tenant}/contacts", json={"Name": "Ada"})).json()
        invoice = (
            await http.post(
                f"/control/organisations/{tenant}/invoices",
                json={
                    "Contact": {"ContactID": contact["ContactID"]},
                    "LineItems": [{"Description": "Work", "Quantity": 1, "UnitAmount": 80, "AccountCode": "200"}],
                },
            )
        ).json()
        paid = await http.post(f"/control/organisations/{tenant}/invoices/{invoice['InvoiceID']}/pay", json={})
        assert paid.status_code == 200 and paid.json()["Amount"] == 80
        invoices = (await http.get(f"/control/organisations/{tenant}/invoices")).json()
        assert invoices[0]["Status"] == "PAID"
        again = await http.post(f"/control/organisations/{tenant}/invoices/{invoice['InvoiceID']}/pay", json={})
        assert again.status_code == 400 and again.json()["Type"] == "ValidationException"
        bad = await http.post(f"/control/organisations/{tenant}/contacts", content=b"[")
        assert bad.status_code == 400


async def test_pages_show_each_organisations_books() -> None:
    app = create_app(make_config())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://xero.test") as http:
        tenant = app.state.sandbox.by_name("Demo Company (UK)").tenant_id
        await http.post(
            f"/control/organisations/{tenant}/contacts", json={"Name": "Ada <b>", "EmailAddress": "a@x.com"}
        )
        listing = await http.get("/organisations")
        assert "Demo Company (UK)" in listing.text and tenant in listing.text
        page = await http.get(f"/organisations/{tenant}")
        assert page.status_code == 200 and "Ada &lt;b&gt;" in page.text and "a@x.com" in page.text
        assert (await http.get("/organisations/nope")).status_code == 404
