"""Fixtures: a sandbox on a loopback port, an HTTP client for it, and a webhook receiver."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from ledgerbridge.testing import running_server
from ledgerbridge_crmconnect.sandbox import LocationSeed, OAuthAppSeed, SandboxConfig, SandboxEngine, create_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

LOCATION = "locSandbox0000000001"
TOKEN = "pit-test-token-1"
OTHER_LOCATION = "locSandbox0000000002"
OTHER_TOKEN = "pit-test-token-2"
V1 = "2021-07-28"


@dataclass
class Sandbox:
    url: str
    engine: SandboxEngine
    api: httpx.AsyncClient  # authenticated as LOCATION with Version 2021-07-28

    async def control(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = await self.api.request(method, f"/_control{path}", json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.status_code < 300, response.text
        return response.json()

    async def contact(self, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
        body = {
            "locationId": LOCATION,
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": email,
            "phone": "+15555550100",
            **extra,
        }
        return await self.control("POST", "/contacts", body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A webhook endpoint answering with scripted statuses (then 200), recording what it got."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self, event_type: str | None = None) -> list[dict[str, Any]]:
        out = [json.loads(raw) for _, raw in self.received]
        return [b for b in out if event_type is None or b["type"] == event_type]


def make_config(**overrides: Any) -> SandboxConfig:
    options: dict[str, Any] = {
        "locations": [
            LocationSeed(id=LOCATION, name="Main", token=TOKEN),
            LocationSeed(id=OTHER_LOCATION, name="Other", token=OTHER_TOKEN),
        ],
        "oauth_apps": [OAuthAppSeed("client-1", "secret-1", ["http://app.test/callback"])],
        "time_scale": 6000.0,  # a 10-minute webhook retry takes 0.1 s
        "rate_limit_requests": 10_000,
    }
    options.update(overrides)
    return SandboxConfig(base_url="", **options)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: Request) -> Response:
        rec.received.append((dict(request.headers), await request.body()))
        status = rec.statuses.pop(0) if rec.statuses else 200
        return JSONResponse({"ok": status < 300}, status_code=status)

    async with running_server(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as url:
        rec.url = f"{url}/hook"
        yield rec


async def start(config: SandboxConfig) -> AsyncIterator[Sandbox]:
    app = create_app(config)
    engine: SandboxEngine = app.state.sandbox
    async with running_server(app) as url:
        engine.set_base_url(url)
        headers = {"Authorization": f"Bearer {TOKEN}", "Version": V1}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            yield Sandbox(url, engine, client)


@pytest.fixture
async def sandbox(receiver: Receiver) -> AsyncIterator[Sandbox]:
    async for sb in start(make_config(webhook_url=receiver.url)):
        yield sb
