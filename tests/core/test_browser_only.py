"""The browser's middleware (session cookie, its guard, CSRF) runs for every route but the webhooks."""

from __future__ import annotations

import httpx
from ledgerbridge.web.browser_only import BrowserOnly
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class Stamp:
    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app, self.name = app, name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {}).setdefault("seen", []).append(self.name)
        await self.app(scope, receive, send)


async def seen(request: Request) -> JSONResponse:
    return JSONResponse(request.scope.get("state", {}).get("seen", []))


async def test_a_webhook_skips_the_browser_middleware_and_every_other_route_runs_it_in_order() -> None:
    app = Starlette(
        routes=[Route("/plugins/crm/webhooks", seen, methods=["POST"]), Route("/accounts", seen, methods=["POST"])],
        middleware=[
            Middleware(
                BrowserOnly,
                skip_paths={"/plugins/crm/webhooks"},
                middleware=[Middleware(Stamp, name="session"), Middleware(Stamp, name="csrf")],
            )
        ],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        assert (await http.post("/plugins/crm/webhooks")).json() == []
        assert (await http.post("/accounts")).json() == ["session", "csrf"]
