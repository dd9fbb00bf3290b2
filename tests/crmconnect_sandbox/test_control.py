"""Control API and app wiring: faults, mounting under a prefix, state persistence, CLI options."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import httpx
from ledgerbridge.testing import running_server
from ledgerbridge_crmconnect.sandbox import add_arguments, config_from_args, create_app, startup_banner
from starlette.applications import Starlette
from starlette.routing import Mount

from .conftest import LOCATION, TOKEN, V1, Receiver, Sandbox, make_config

PARAMS = {"locationId": LOCATION, "email": "x@example.com"}


async def test_next_n_errors_then_recovery(sandbox: Sandbox) -> None:
    await sandbox.control("POST", "/faults", {"failNext": 2, "status": 503})
    statuses = [(await sandbox.api.get("/contacts/search/duplicate", params=PARAMS)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    await sandbox.control("POST", "/faults", {"failNext": 1, "status": 429})
    r = await sandbox.api.get("/contacts/search/duplicate", params=PARAMS)
    assert r.status_code == 429 and "X-RateLimit-Remaining" in r.headers


async def test_latency(sandbox: Sandbox) -> None:
    await sandbox.control("POST", "/faults", {"latencyMs": 150})
    began = time.monotonic()
    await sandbox.api.get("/contacts/search/duplicate", params=PARAMS)
    assert time.monotonic() - began >= 0.15
    await sandbox.control("DELETE", "/faults", expect=200)
    assert sandbox.engine.faults.latency_seconds == 0


async def test_create_location_returns_a_working_token(sandbox: Sandbox) -> None:
    location = await sandbox.control("POST", "/locations", {"id": "locNew", "name": "New", "token": "tok-new"})
    assert location["token"] == "tok-new"
    r = await sandbox.api.get(
        "/contacts/search/duplicate", params={"locationId": "locNew"}, headers={"Authorization": "Bearer tok-new"}
    )
    assert r.status_code == 200
    await sandbox.control("POST", "/locations", {"id": "locNew"}, expect=400)
    listed = (await sandbox.control("GET", "/locations"))["locations"]
    assert {loc["id"] for loc in listed} >= {"locNew", LOCATION}


async def test_works_mounted_under_a_prefix(receiver: Receiver) -> None:
    sandbox_app = create_app(make_config(webhook_url=receiver.url))
    parent = Starlette(routes=[Mount("/sandbox/crmconnect", app=sandbox_app)])
    async with running_server(parent) as url:
        base = f"{url}/sandbox/crmconnect"
        sandbox_app.state.sandbox.set_base_url(base)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {TOKEN}", "Version": V1}) as c:
            contact = (
                await c.post("/_control/contacts", json={"locationId": LOCATION, "email": "m@example.com"})
            ).json()
            got = await c.get(f"/contacts/{contact['id']}")
            assert got.status_code == 200 and got.json()["contact"]["email"] == "m@example.com"
            authorize = (await c.get("/_control/oauth/authorize-url", params={"client_id": "client-1"})).json()["url"]
            assert authorize.startswith(f"{base}/oauth/chooselocation?")
            # No lifespan reaches a mounted app: delivery starts on the first request instead.
            await sandbox_app.state.sandbox.webhooks.drain()
            assert receiver.bodies("ContactCreate")[0]["email"] == "m@example.com"
        await sandbox_app.state.sandbox.webhooks.stop()


async def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    state_file = str(tmp_path / "sandbox.json")
    first = create_app(make_config(state_file=state_file))
    async with running_server(first) as url, httpx.AsyncClient(base_url=url) as c:
        contact = (
            await c.post("/_control/contacts", json={"locationId": LOCATION, "email": "keep@example.com"})
        ).json()
        await c.post(
            "/_control/invoices", json={"contactId": contact["id"], "items": [{"name": "A", "qty": 1, "amount": 9.99}]}
        )
    second = create_app(make_config(state_file=state_file))
    async with running_server(second) as url:
        headers = {"Authorization": f"Bearer {TOKEN}", "Version": V1}
        async with httpx.AsyncClient(base_url=url, headers=headers) as c:
            assert (await c.get(f"/contacts/{contact['id']}")).json()["contact"]["email"] == "keep@example.com"
            invoices = (
                await c.get("/invoices/", params={"altId": LOCATION, "altType": "location", "limit": 10, "offset": 0})
            ).json()
            assert invoices["invoices"][0]["total"] == 9.99


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        [
            "--webhook-url",
            "http://127.0.0.1:9/hook",
            "--location",
            "locA:tokA",
            "--location",
            "locB:tokB",
            "--rate-limit",
            "50/5",
            "--time-scale",
            "10",
        ]
    )
    config = config_from_args(args, "http://127.0.0.1:8000/sandbox/crmconnect")
    assert [(loc.id, loc.token) for loc in config.locations] == [("locA", "tokA"), ("locB", "tokB")]
    assert (config.rate_limit_requests, config.rate_limit_interval_seconds, config.time_scale) == (50, 5.0, 10.0)
    assert config.base_url.endswith("/sandbox/crmconnect") and config.webhook_url == "http://127.0.0.1:9/hook"
    default = config_from_args(parser.parse_args([]), "http://x")
    assert default.locations[0].token and default.oauth_apps
    app = create_app(default)
    banner = startup_banner(default, app.state.sandbox.public_keys())
    assert "BEGIN PUBLIC KEY" in banner and default.locations[0].token in banner
