from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledgerbridge import hookimpl
from ledgerbridge.errors import PermanentFailure
from ledgerbridge.runtime import Runtime
from ledgerbridge.testing import running_server
from ledgerbridge.web.app import create_app

from tests.core.conftest import fast_settings, manager_with
from tests.core.plugins import Recorder, WebhookSource

ADMIN = {"Authorization": "Bearer test-admin-token"}


class ReviewSettings(msgspec.Struct, kw_only=True):
    review_requests: bool = True
    note: str = ""


class SettingsPlugin:
    @hookimpl
    def settings_schema(self) -> type[msgspec.Struct]:
        return ReviewSettings


class Server:
    def __init__(self, url: str, runtime: Runtime, sink: Recorder) -> None:
        self.url = url
        self.runtime = runtime
        self.sink = sink
        self.client = httpx.AsyncClient(base_url=url, timeout=10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    sink = Recorder(
        fail=lambda ctx, p: PermanentFailure("rejected") if p.payment_id.startswith("bad") else None, role="accounting"
    )
    plugins = manager_with({"source": WebhookSource(), "sink": sink, "tuned": SettingsPlugin()})
    runtime = Runtime(fast_settings(tmp_path, max_body_bytes=4096, max_json_depth=16), plugins)
    app = create_app(runtime=runtime, mount_sandboxes=False)
    async with running_server(app) as url:
        result = Server(url, runtime, sink)
        async with result.client:
            await result.client.post("/admin/api/accounts", json={"name": "Acme"}, headers=ADMIN)
            yield result


async def test_health_and_readiness(server: Server) -> None:
    assert (await server.client.get("/healthz")).json() == {"status": "ok"}
    assert (await server.client.get("/readyz")).json() == {"status": "ready"}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"[" * 2000 + b"]" * 2000, 400, "nested deeper"),
        (b'{"a":' * 80 + b"1" + b"}" * 80, 400, "nested deeper"),
        (b"[1, 2, 3]", 422, "expected an object"),
        (b'{"account": "acme"}', 422, "expected an object"),
        (b'{"account": "nobody", "id": "1", "payment_id": "p"}', 404, "no account"),
        (b'{"pad": "' + b"x" * 5000 + b'"}', 413, "larger than 4096"),
    ],
)
async def test_bad_webhook_bodies_get_a_4xx_with_a_message(
    server: Server, body: bytes, status: int, words: str
) -> None:
    response = await server.client.post("/plugins/source/events", content=body)
    assert response.status_code == status
    assert words in response.json()["error"]["message"]
    assert await server.runtime.store.count_deliveries("acme") == {}


async def test_oversized_streamed_body_is_refused(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    response = await server.client.post("/plugins/source/events", content=chunks())
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]["message"]


async def test_unknown_path_is_a_json_404(server: Server) -> None:
    response = await server.client.get("/nowhere")
    assert response.status_code == 404
    assert response.json()["error"]["message"]


async def test_webhook_is_acknowledged_after_commit_and_deduplicated(server: Server) -> None:
    event = {"account": "acme", "id": "evt-1", "payment_id": "pay-1"}
    replies = await asyncio.gather(*(server.client.post("/plugins/source/events", json=event) for _ in range(3)))
    assert sorted(r.json()["stored"] for r in replies) == [False, False, True]
    await server.sink.wait_for(1)
    await asyncio.sleep(0.2)
    assert len(server.sink.calls) == 1


async def test_admin_api_needs_the_admin_credential(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        response = await server.client.get("/admin/api/accounts", headers=headers)
        assert response.status_code == 401
        assert "admin credential" in response.json()["error"]["message"]


async def test_admin_accounts_and_plugins(server: Server) -> None:
    client = server.client
    listed = (await client.get("/admin/api/plugins", headers=ADMIN)).json()
    assert {p["name"] for p in listed} == {"source", "sink", "tuned", "reviews"}
    assert next(p for p in listed if p["name"] == "reviews")["core"] is True
    assert "on_payment" in next(p for p in listed if p["name"] == "sink")["hooks"]

    created = await client.post(
        "/admin/api/accounts", json={"name": "Globex Corp", "plugins": ["source"]}, headers=ADMIN
    )
    assert created.status_code == 201 and created.json()["id"] == "globex-corp"
    again = await client.post("/admin/api/accounts", json={"name": "Globex Corp"}, headers=ADMIN)
    assert again.status_code == 409
    strict = await client.post("/admin/api/accounts", json={"name": "X", "colour": "red"}, headers=ADMIN)
    assert strict.status_code == 422 and "colour" in strict.json()["error"]["message"]
    unknown = await client.post("/admin/api/accounts", json={"name": "Y", "plugins": ["xero"]}, headers=ADMIN)
    assert unknown.status_code == 422

    detail = (await client.get("/admin/api/accounts/globex-corp", headers=ADMIN)).json()
    assert {p["name"]: p["enabled"] for p in detail["plugins"]} == {
        "sink": False,
        "source": True,
        "tuned": False,
        "reviews": True,  # the core's own policy: always on
    }

    toggled = await client.put("/admin/api/accounts/globex-corp/plugins/sink", json={"enabled": True}, headers=ADMIN)
    assert toggled.json() == {"plugin": "sink", "enabled": True}
    assert "sink" in await server.runtime.enabled_plugins("globex-corp")
    missing = await client.put("/admin/api/accounts/globex-corp/plugins/xero", json={"enabled": True}, headers=ADMIN)
    assert missing.status_code == 404


async def test_plugin_settings_are_validated_by_the_plugin_schema(server: Server) -> None:
    url = "/admin/api/accounts/acme/plugins/tuned/settings"
    assert (await server.client.get(url, headers=ADMIN)).json() == {"review_requests": True, "note": ""}
    saved = await server.client.patch(url, json={"review_requests": False}, headers=ADMIN)
    assert saved.json() == {"review_requests": False, "note": ""}
    wrong_type = await server.client.patch(url, json={"review_requests": "nope"}, headers=ADMIN)
    assert wrong_type.status_code == 422 and "review_requests" in wrong_type.json()["error"]["message"]
    unknown = await server.client.patch(url, json={"colour": "red"}, headers=ADMIN)
    assert unknown.status_code == 422 and "colour" in unknown.json()["error"]["message"]
    ctx = await server.runtime.account_context("acme", "tuned")
    assert ctx is not None and (await ctx.settings()).review_requests is False


async def test_dead_letter_listing_and_replay_over_http(server: Server) -> None:
    await server.client.post("/plugins/source/events", json={"account": "acme", "id": "e", "payment_id": "bad-1"})
    await server.sink.wait_for(1)

    async def dead() -> list[dict[str, Any]]:
        while True:
            rows = (await server.client.get("/admin/api/accounts/acme/deliveries?state=dead", headers=ADMIN)).json()
            if rows:
                return list(rows)
            await asyncio.sleep(0.02)

    [row] = await asyncio.wait_for(dead(), 5)
    assert row["last_error"] == "rejected"
    shown = (await server.client.get(f"/admin/api/accounts/acme/deliveries/{row['id']}", headers=ADMIN)).json()
    assert shown["event"]["payment_id"] == "bad-1" and shown["source"] == "source"

    url = f"/admin/api/accounts/acme/deliveries/{row['id']}/replay"
    replies = await asyncio.gather(*(server.client.post(url, headers=ADMIN) for _ in range(3)))
    # a replay while the letter is queued again is a 409; once it has failed again (this one always does, and
    # may do so before the last request arrives), replaying it again is a new replay: each runs once
    accepted = [r.status_code for r in replies].count(202)
    assert accepted >= 1 and sorted(r.status_code for r in replies) == [202] * accepted + [409] * (3 - accepted)
    await server.sink.wait_for(1 + accepted)
    await asyncio.wait_for(dead(), 5)  # dead again: nothing more is on its way
    assert len(server.sink.calls) == 1 + accepted

    activity = (await server.client.get("/admin/api/accounts/acme/activity", headers=ADMIN)).json()
    assert any("replayed" in entry["message"] for entry in activity)


async def test_account_scoping(server: Server) -> None:
    client = server.client
    await client.post("/admin/api/accounts", json={"name": "Other"}, headers=ADMIN)
    await client.post("/plugins/source/events", json={"account": "acme", "id": "e1", "payment_id": "bad-2"})
    await server.sink.wait_for(1)
    await asyncio.sleep(0.3)
    [acme_delivery] = (await client.get("/admin/api/accounts/acme/deliveries", headers=ADMIN)).json()
    foreign = await client.get(f"/admin/api/accounts/other/deliveries/{acme_delivery['id']}", headers=ADMIN)
    assert foreign.status_code == 404
    replay = await client.post(f"/admin/api/accounts/other/deliveries/{acme_delivery['id']}/replay", headers=ADMIN)
    assert replay.status_code == 404
    assert (await client.get("/admin/api/accounts/nobody/activity", headers=ADMIN)).status_code == 404
    assert (await client.get("/admin/api/accounts/acme/deliveries/abc", headers=ADMIN)).status_code == 404
    assert (await client.get("/admin/api/accounts/acme/deliveries?state=lost", headers=ADMIN)).status_code == 400
