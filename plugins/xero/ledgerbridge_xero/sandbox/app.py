"""The Starlette application: identity, Accounting API, control routes and the webhook sender's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import api, control, oauth
from .config import SandboxConfig
from .engine import Sandbox


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(config: SandboxConfig, sandbox: Sandbox | None = None) -> Starlette:
    """Build the sandbox app; `app.state.sandbox` is the engine. Works at / or under a Mount prefix."""
    engine = sandbox or Sandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = asyncio.create_task(engine.dispatcher.run())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    routes = [Route("/healthz", healthz), *oauth.routes, *api.routes, *control.routes]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = engine
    return app
