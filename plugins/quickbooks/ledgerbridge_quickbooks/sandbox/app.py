"""The Starlette application: routes, the intuit_tid header, and the lifespan workers."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import api, control, oauth, pages
from .config import SandboxConfig
from .engine import Sandbox

PERSIST_EVERY = 1.0


class IntuitTidMiddleware:
    """Every response carries an `intuit_tid`, as Intuit's do."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"

        async def send_with_tid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"intuit_tid", tid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_tid)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _persist(sandbox: Sandbox) -> None:
    while True:
        await asyncio.sleep(PERSIST_EVERY)
        if sandbox.dirty:
            sandbox.save()


def create_app(config: SandboxConfig, sandbox: Sandbox | None = None) -> Starlette:
    """Build the sandbox app; `app.state.sandbox` is the engine. Works at / or under a Mount prefix."""
    engine = sandbox or Sandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        workers = [asyncio.create_task(engine.dispatcher.run())]
        if config.state_file:
            workers.append(asyncio.create_task(_persist(engine)))
        try:
            yield
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
            if config.state_file:
                engine.save()

    routes = [Route("/healthz", healthz), *oauth.routes, *api.routes, *control.routes, *pages.routes]
    app = Starlette(routes=routes, middleware=[Middleware(IntuitTidMiddleware)], lifespan=lifespan)
    app.state.sandbox = engine
    return app
